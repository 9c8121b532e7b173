"""The browser UI in headless Chromium: answers, citations, the transcript panel, permalinks,
escaping, no outside requests, and embedding in a frame from an allowed origin only."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import threading
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from tests.conftest import ROOT, TRANSCRIPT
from tests.web_fixtures import free_port, running

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT = 30_000
EMBED_PORT = free_port()
SCREENSHOT = ROOT / "docs" / "screenshot.png"


@pytest.fixture(scope="module")
def app_url(engine):
    from rag.server import create_app

    app = create_app(engine, cors_origins=[f"http://127.0.0.1:{EMBED_PORT}"])
    with running(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture()
def page(browser, app_url):
    """A page that records every request and dialog; all requests must stay on the app."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    page.requests, page.dialogs = [], []
    page.on("request", lambda r: page.requests.append(r.url))
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    yield page
    context.close()
    origin = urlsplit(app_url).netloc
    outside = [u for u in page.requests
               if urlsplit(u).scheme not in ("data", "blob") and urlsplit(u).netloc != origin]
    assert page.requests and not outside, outside
    assert not page.dialogs


@pytest.fixture(scope="module")
def text():
    return TRANSCRIPT.read_text(encoding="utf-8")


def ask(page, question: str) -> None:
    box = page.locator("#question textarea")
    box.fill(question)
    before = page.locator("#chat .message-row").count()
    page.click("#ask-button")
    page.wait_for_function(
        "n => document.querySelectorAll('#chat .message-row').length >= n + 2", arg=before)
    page.wait_for_function(
        "q => { const cards = document.querySelector('#citations .cards-head a');"
        " const href = cards && cards.getAttribute('href');"
        " return href === '?q=' + q || (href || '').startsWith('?q=' + q + '&'); }",
        arg=quote(question))


def cards(page) -> list[dict]:
    return page.eval_on_selector_all("#citations .cite-card", """cards => cards.map(c => ({
        quote: c.querySelector('blockquote').textContent,
        label: c.querySelector('.cite-label').textContent,
        question: c.querySelector('.cite-question').textContent,
        meta: c.querySelector('.cite-meta').textContent,
        ref: c.querySelector('.copy-cite').dataset.ref,
        target: c.querySelector('a.cite-link').dataset.target}))""")


def span_of(ref: str) -> tuple[int, int]:
    start, end = re.search(r"chars (\d+)\u2013(\d+)$", ref).groups()
    return int(start), int(end)


def check_answer(page, text: str) -> list[dict]:
    found = cards(page)
    assert found
    chat = page.inner_text("#chat")
    hits = page.eval_on_selector_all("#transcript-panel .passage.hit",
                                     "els => els.map(e => [e.id, e.textContent])")
    assert len(hits) == len(found)
    for card in found:
        start, end = span_of(card["ref"])
        quoted = text[start:end]
        assert card["quote"] == f"\u201c{quoted}\u201d"
        assert quoted in chat
        assert card["ref"].startswith("Antony Blinken, interview with France 2, 2021-10, answer ")
        assert card["meta"].startswith("Answer ") and "France 2" in card["meta"]
        assert [card["target"], quoted] in hits
    return found


def test_french_question(page, app_url, text):
    page.goto(app_url + "/")
    ask(page, "Que dit Blinken du Sahel ?")
    found = check_answer(page, text)
    assert found[0]["label"] == "[1]"
    assert "Sahel" in found[0]["question"]
    assert not page.locator("#sources").is_visible()  # one transcript: nothing to choose
    assert "[1]" in page.inner_text("#chat")
    if os.environ.get("RAG_SCREENSHOT") == "1":
        page.wait_for_timeout(2000)  # past the brief flash on the first quote
        page.screenshot(path=str(SCREENSHOT), full_page=True)


def test_english_question_and_follow_up(page, app_url, text):
    page.goto(app_url + "/")
    ask(page, "What did Blinken and Macron discuss?")
    check_answer(page, text)
    ask(page, "And the Sahel?")
    check_answer(page, text)
    assert "Searched: What did Blinken and Macron discuss? And the Sahel?" in page.inner_text(
        "#chat")


def test_an_off_topic_follow_up_is_not_answered_from_the_question_before(page, app_url, text):
    page.goto(app_url + "/")
    ask(page, "What does Blinken say about the Sahel?")
    check_answer(page, text)
    ask(page, "And about China?")
    chat = page.inner_text("#chat")
    assert "Searched: What does Blinken say about the Sahel? And about China?" in chat
    assert chat.rstrip().count("The interview does not address this") == 1
    found = cards(page)
    assert found and all(c["label"] == "closest, but not an answer" for c in found)


def test_a_weak_match_is_flagged_and_a_strong_one_shows_its_confidence(page, app_url, text):
    page.goto(app_url + "/")
    # two answers the ranking can hardly tell apart (tests/test_answer.py)
    ask(page, "Le nombre de soldats suffit-il à juger de l'implication américaine ?")
    check_answer(page, text)
    assert ("Weak match: these passages come from different answers, check which one answers "
            "the question") in page.inner_text("#chat")
    head = page.inner_text("#citations .cards-head")
    assert re.search(r"confidence 0\.[0-4]\d", head)
    ask(page, "Que dit Blinken du Sahel ?")
    check_answer(page, text)
    assert page.inner_text("#chat").count("Weak match") == 1
    assert re.search(r"confidence 0\.[5-9]\d|confidence 1\.00",
                     page.inner_text("#citations .cards-head"))


def test_clearing_the_chat_starts_afresh(page, app_url):
    page.goto(app_url + "/")
    ask(page, "Que dit Blinken du Sahel ?")
    page.locator("#chat button[aria-label='Clear']").click()
    page.wait_for_function("() => !document.querySelector('#citations .cite-card')")
    assert page.locator("#transcript-panel .passage.hit").count() == 0
    ask(page, "And Macron?")
    assert "Searched:" not in page.inner_text("#chat")


def test_abstention_shows_closest_passages(page, app_url):
    page.goto(app_url + "/")
    ask(page, "Who won the football world cup?")
    assert "The interview does not address this" in page.inner_text("#chat")
    found = cards(page)
    assert found and all(c["label"] == "closest, but not an answer" for c in found)


def test_citation_link_scrolls_the_transcript(page, app_url):
    page.goto(app_url + "/")
    ask(page, "Que dit Blinken du Sahel ?")
    panel = "#transcript-panel .transcript-scroll"
    target = cards(page)[0]["target"]
    page.wait_for_function(IN_PANEL, arg=[panel, target])  # shown once answered
    for position in ("0", "p.scrollHeight"):
        page.eval_on_selector(panel, f"p => {{ p.scrollTop = {position}; }}")
        if not in_panel(page, panel, target):
            break
    assert not in_panel(page, panel, target)
    page.locator("#citations a.cite-link").first.click()
    page.wait_for_function(IN_PANEL, arg=[panel, target])
    assert "hit" in page.get_attribute(f"#{target}", "class")


@pytest.mark.parametrize("width,height", [(375, 667), (1280, 800)])
def test_answer_stays_in_view_and_the_panel_shows_citation_one(browser, app_url, width,
                                                                height):
    """Answering moves the transcript panel to citation [1], never the page: on a phone the
    page scrolling to the transcript would hide the answer and the question box."""
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)
        page.goto(app_url + "/")
        box = page.locator("#question textarea")
        box.fill("Que dit Blinken du Sahel ?")
        box.evaluate("b => b.scrollIntoView({block: 'end'})")  # the reader at the question box
        before = page.evaluate("() => window.scrollY")
        page.evaluate("() => document.querySelector('#ask-button').click()")  # no scrolling
        flashed = page.wait_for_function(  # the passage revealed once answered
            "() => document.querySelector('#transcript-panel .passage.flash')"
        ).evaluate("e => e.id")
        assert page.evaluate("() => window.scrollY") == before
        first = cards(page)[0]
        assert first["label"] == "[1]"
        hits = page.eval_on_selector_all("#transcript-panel .passage.hit",
                                         "els => els.map(e => e.id)")
        assert hits[0] != first["target"]  # [1] is not the first passage in the transcript
        assert flashed == first["target"]
        panel = "#transcript-panel .transcript-scroll"
        assert in_panel(page, panel, first["target"])
        assert page.evaluate(IN_WINDOW, "#chat [data-testid='bot']")
        assert page.evaluate(IN_WINDOW, "#question textarea")
        # Asked for, the passage is brought into the window, scrolling the page if need be.
        page.locator("#citations a.cite-link").first.click()
        page.wait_for_function(IN_WINDOW, arg="#" + first["target"])
        assert in_panel(page, panel, first["target"])
    finally:
        context.close()


@pytest.mark.parametrize("width,height", [(375, 667), (1280, 800)])
def test_the_page_opens_at_its_top_ready_for_a_question(browser, app_url, width, height):
    """The question box has the focus, so a reader can type at once, and the page is not
    scrolled to it: on a phone that would open the page past its title and the chat."""
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)
        page.goto(app_url + "/")
        page.wait_for_function(
            "() => document.activeElement === document.querySelector('#question textarea')")
        assert page.evaluate("() => window.scrollY") == 0
        page.keyboard.type("Sahel")
        assert page.locator("#question textarea").input_value() == "Sahel"
    finally:
        context.close()


@pytest.mark.parametrize("width,theme,question", [
    (1280, "light", None),
    (1280, "light", "Que dit Blinken du Sahel ?"),
    (1280, "light", "What did Blinken say about the Olympic Games?"),  # abstains
    (1280, "dark", "Que dit Blinken du Sahel ?"),
    (375, "light", "Did France feel betrayed?"),
])
def test_no_accessibility_violations(browser, app_url, width, theme, question):
    """axe-core, the accessibility engine browsers' audit tools use, finds nothing on the page
    before and after an answer or an abstention, in light and dark mode, on a phone: contrast,
    headings, names, keyboard access to the scrolling transcript."""
    context = browser.new_context(viewport={"width": width, "height": 900},
                                  color_scheme=theme)
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)
        page.goto(app_url + f"/?__theme={theme}")
        page.locator("#question textarea").wait_for()
        if question:
            page.locator("#question textarea").fill(question)
            page.click("#ask-button")
            page.wait_for_selector("#citations .cite-card")
        assert not accessibility_problems(page)
    finally:
        context.close()


def accessibility_problems(page) -> list:
    """What axe-core finds wrong on the page, once any loading indicator has faded out."""
    from axe_playwright_python.sync_playwright import Axe

    for _ in range(10):
        found = Axe().run(page).response["violations"]
        if not found:
            return []
        page.wait_for_timeout(1000)
    return [(v["id"], v["impact"], [(n["target"], n["failureSummary"]) for n in v["nodes"][:3]])
            for v in found]


IN_WINDOW = """selector => { const r = document.querySelector(selector).getBoundingClientRect();
    return r.bottom > 0 && r.top < window.innerHeight; }"""


IN_PANEL = """([panel, id]) => { const p = document.querySelector(panel).getBoundingClientRect();
    const t = document.getElementById(id).getBoundingClientRect();
    return t.top >= p.top && t.bottom <= p.bottom; }"""


def in_panel(page, panel: str, target: str) -> bool:
    return page.evaluate(IN_PANEL, [panel, target])


def test_copy_citation(page, app_url):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(app_url + "/")
    ask(page, "Que dit Blinken du Sahel ?")
    ref = cards(page)[0]["ref"]
    page.locator("#citations button.copy-cite").first.click()
    page.wait_for_function("() => document.querySelector('button.copy-cite')"
                           ".textContent === 'Copied'")
    assert page.evaluate("() => navigator.clipboard.readText()") == ref
    assert re.fullmatch(r"Antony Blinken, interview with France 2, 2021-10, answer \d+, "
                        r"chars \d+\u2013\d+", ref)


def test_permalink_asks_its_question(page, app_url, text):
    question = "What did Blinken and Macron discuss?"
    page.goto(f"{app_url}/?q={quote(question)}")
    page.wait_for_selector("#citations .cite-card")
    assert question in page.inner_text("#chat")
    check_answer(page, text)


def test_permalink_of_a_follow_up_keeps_its_context(page, app_url, text):
    """A follow-up's permalink gives the same answer when opened alone."""
    page.goto(app_url + "/")
    ask(page, "La France s'est-elle sentie trahie ?")
    ask(page, "et pourquoi ?")
    assert "The interview does not address this" not in page.inner_text("#chat")
    answered = check_answer(page, text)
    link = page.get_attribute("#citations .cards-head a", "href")
    assert "previous=" in link
    page.goto(app_url + "/" + link)
    page.wait_for_selector("#citations .cite-card")
    assert "The interview does not address this" not in page.inner_text("#chat")
    assert check_answer(page, text) == answered
    assert page.get_attribute("#citations .cards-head a", "href") == link


def test_html_in_a_question_is_shown_as_text(page, app_url):
    page.goto(app_url + "/")
    attack = "<img src=x onerror=alert(1)>"
    ask(page, attack)
    page.wait_for_timeout(500)
    assert attack in page.inner_text("#chat")
    assert page.locator("img[src='x']").count() == 0
    assert page.evaluate("() => document.body.innerHTML.includes('<img src=\"x\"')") is False
    page.goto(f"{app_url}/?q={quote(attack)}")
    page.wait_for_selector("#citations .cite-card")
    assert attack in page.inner_text("#chat")
    assert page.locator("img[src='x']").count() == 0


MARKUP = ("$$x^2$$ Sahel http://evil.example/ www.evil.example mail@evil.example\n"
          "- item\n+ plus\n* star\n1. one\n2) two\n# heading\n> quoted\n"
          "Sahel\n===\n---\n| a | b |\n|---|---|\n    indented\n"
          "**bold** _em_ ~~struck~~ `code` [link](http://evil.example/) ![i](x.png) "
          "<b>tag</b> &amp; \\* $y$ %%%LATEX_BLOCK_0%%% %%%CODE_BLOCK_0%%% 50 % Sahel")
MARKUP_TAGS = "a, img, ul, ol, li, h1, h2, h3, h4, h5, h6, blockquote, pre, code, em, strong, " \
    "del, s, b, hr, table, .katex, math"


def test_markdown_and_latex_in_a_question_are_shown_as_text(page, app_url):
    """Whatever a user types reads back as typed: no maths, links, lists or headings."""
    page.goto(app_url + "/")
    page.locator("#question textarea").fill(MARKUP)
    page.click("#ask-button")
    page.wait_for_selector("#citations .cite-card")
    user = page.locator("#chat [data-testid='user']").last
    assert user.locator(MARKUP_TAGS).count() == 0
    found = page.eval_on_selector_all(f"#chat :is({MARKUP_TAGS})",
                                      "els => els.map(e => e.tagName + ' ' + e.textContent)")
    assert all(f.startswith("EM Searched: ") for f in found), found  # the reply's own only
    shown = user.inner_text().replace("\u00a0", " ")
    assert shown.split() == MARKUP.split()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def host_page(folder: Path, port: int):
    handler = functools.partial(_Quiet, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_embedding_in_a_frame(browser, app_url, tmp_path):
    (tmp_path / "index.html").write_text(
        f'<!doctype html><title>host</title><iframe id="rag" src="{app_url}/" '
        'width="1200" height="900"></iframe>', encoding="utf-8")
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)
        with host_page(tmp_path, EMBED_PORT) as allowed:
            page.goto(allowed + "/index.html")
            frame = page.frame_locator("#rag")
            frame.locator("#question textarea").fill("Que dit Blinken du Sahel ?")
            frame.locator("#ask-button").click()
            frame.locator("#citations .cite-card").first.wait_for()
        with host_page(tmp_path, free_port()) as other:
            page.goto(other + "/index.html")
            page.wait_for_timeout(2000)
            assert len(page.frames) == 2  # the page and its (refused) frame
            assert not any(f.locator("#question").count() for f in page.frames)
    finally:
        context.close()


def test_choosing_the_transcripts_to_ask(browser, two_engine):
    """With two interviews indexed, the page offers to ask only some of them; none chosen
    asks them all."""
    from rag.server import create_app

    gas = "What will be done about household gas bills?"
    with running(create_app(two_engine)) as url:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        try:
            page = context.new_page()
            page.set_default_timeout(TIMEOUT)
            page.goto(url + "/")
            options = page.locator("#sources")
            options.wait_for()
            ask(page, gas)
            assert cards(page)[0]["ref"].startswith("Maria Costa, interview with Radio Example")
            page.click("#sources input")
            page.get_by_role("option", name="Antony Blinken · France 2 · 2021-10").click()
            page.keyboard.press("Escape")
            ask(page, "Will household gas bills be capped?")  # (a new question: new cards)
            assert "The interview does not address this" in page.inner_text("#chat")
            found = cards(page)
            assert found and all(c["ref"].startswith("Antony Blinken") for c in found)
            assert all(c["label"] == "closest, but not an answer" for c in found)
            link = page.get_attribute("#citations .cards-head a", "href")
            assert link.endswith("&source=" + quote(f"data/{TRANSCRIPT.name}"))
            ask(page, "What about the Sahel?")
            assert cards(page)[0]["ref"].startswith("Antony Blinken, interview with France 2")
            page.goto(url + "/" + link)  # the permalink asks again of the same transcript
            page.wait_for_selector("#citations .cite-card")
            assert "The interview does not address this" in page.inner_text("#chat")
            assert "Antony Blinken · France 2 · 2021-10" in page.inner_text("#sources")
            assert not accessibility_problems(page)  # with the choice of transcripts shown
            attack = "<img src=x onerror=alert(1)>"  # a link naming no transcript, as HTML
            page.goto(f"{url}/?q=Sahel&source={quote(attack)}")
            page.wait_for_function("() => (document.querySelector('#chat') || {}).innerText"
                                   "?.includes('no transcript named')")
            assert attack in page.inner_text("#chat")
            assert page.locator("img[src='x']").count() == 0
        finally:
            context.close()
