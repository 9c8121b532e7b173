"""The browser UI: a chat that answers from the interview with verbatim quotes, citation cards,
and the whole transcript beside it with the cited passages highlighted.

It only calls the library and formats what it returns. Every piece of text that reaches HTML,
from the user or from a transcript, is escaped first, and in the chat, which renders Markdown,
kept from being read as Markdown too.

Run it with `python ui.py` (or `rag serve`); RAG_INDEX, RAG_HOST, RAG_PORT, RAG_ROOT_PATH and
RAG_CORS_ORIGINS configure it.
"""

from __future__ import annotations

import html
import importlib.abc
import importlib.machinery
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from urllib.parse import quote

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


class _StubWritesOff(importlib.abc.MetaPathFinder):
    """Keeps Gradio from regenerating its components' type stubs (.pyi) while it is imported.

    Gradio parses each component's source and rewrites its stub file at every import, over
    half of its import time and so of the server's start; a running app never reads them.
    Only `gradio.component_meta` is touched, and only its stub writer.
    """

    module = "gradio.component_meta"

    def find_spec(self, name, path, target=None):
        if name != self.module:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _WithoutStubWriter(spec.loader)
        return spec


class _WithoutStubWriter(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        if callable(getattr(module, "create_or_modify_pyi", None)):
            module.create_or_modify_pyi = lambda *args, **kwargs: None


if "gradio" not in sys.modules:
    sys.meta_path.insert(0, _StubWritesOff())

import gradio as gr  # noqa: E402

from rag import Answer, Citation, QuestionError, Transcript  # noqa: E402
from rag import ask as library_ask  # noqa: E402

ABSTAINED = "L'entretien n'aborde pas cette question / The interview does not address this"
CLOSEST = "closest, but not an answer"
WEAK = ("Correspondance incertaine / Weak match: check that these passages answer the "
        "question")
WEAK_SPLIT = ("Correspondance incertaine / Weak match: these passages come from different "
              "answers, check which one answers the question")
FAILED = "Une erreur est survenue / Something went wrong; please try again."
EXAMPLES = [
    "Que dit Blinken du Sahel ?",
    "La France s'est-elle sentie trahie par les Américains ?",
    "What did Blinken and Macron discuss?",
    "Is the United States still engaged with its allies?",
]
STREAM_PAUSE = 0.04  # seconds between streamed quotes: enough for the eye to follow

# The primary button and the subdued text (hints, the footer) a shade darker than the default,
# so that they meet WCAG AA's contrast (4.5:1) as well as the rest of the text.
THEME = gr.themes.Default(font=["system-ui", "sans-serif"],
                          font_mono=["ui-monospace", "monospace"]).set(
    body_text_color_subdued="*neutral_600",
    body_text_color_subdued_dark="*neutral_400",
    button_primary_background_fill="*primary_700",
    button_primary_background_fill_hover="*primary_800",
    button_primary_background_fill_dark="*primary_700",
    button_primary_background_fill_hover_dark="*primary_800")

CSS = """
#transcript-panel .transcript-scroll { max-height: 75vh; overflow-y: auto; padding: 0 12px;
  border: 1px solid var(--border-color-primary); border-radius: 8px; }
.transcript h3 { margin: 12px 0 4px; }
.turn { margin: 10px 0; padding: 8px 10px; border-radius: 8px; }
.turn-q { background: var(--background-fill-secondary); }
.turn .who { display: block; font-weight: 600; font-size: 0.85em; opacity: 0.8; }
.turn p { margin: 4px 0 0; white-space: pre-wrap; }
.passage.hit { background: #fde68a; color: #111; border-radius: 3px; padding: 0 2px; }
.passage.hit::before { content: "[" attr(data-cite) "] "; font-weight: 600; }
.passage.flash { outline: 3px solid #f59e0b; }
.cards { display: grid; gap: 10px; }
.cite-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 12px; }
.cite-card.closest { border-style: dashed; }
.cite-card blockquote { margin: 4px 0; font-style: italic; }
.cite-card p { margin: 2px 0; }
.cite-label { font-weight: 600; }
.cite-meta, .cite-question { font-size: 0.9em; opacity: 0.85; }
.cite-ref { display: block; font-size: 0.8em; margin-top: 4px; user-select: all; }
.copy-cite { margin-left: 8px; padding: 1px 8px; border: 1px solid var(--border-color-primary);
  border-radius: 6px; cursor: pointer; }
"""

HEAD = """
<script>
(() => {
  // Scrolls the transcript panel alone to the passage, so that the answer stays in view on a
  // narrow screen, where the panel sits below it; `andPage` also brings the passage into the
  // window, for a reader who clicked to see it.
  function reveal(id, andPage) {
    const target = document.getElementById(id);
    const panel = document.querySelector("#transcript-panel .transcript-scroll");
    if (!target || !panel) return false;
    const top = target.getBoundingClientRect().top - panel.getBoundingClientRect().top;
    panel.scrollTop += top - panel.clientHeight / 3;
    if (andPage) target.scrollIntoView({block: "nearest"});
    target.classList.add("flash");
    setTimeout(() => target.classList.remove("flash"), 1600);
    return true;
  }
  function copy(text, button) {
    const done = () => { button.textContent = "Copied"; setTimeout(() => {
      button.textContent = "Copy citation"; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, () => fallback(text, done));
    } else { fallback(text, done); }
  }
  function fallback(text, done) {
    const area = document.createElement("textarea");
    area.value = text; document.body.appendChild(area); area.select();
    try { document.execCommand("copy"); done(); } finally { area.remove(); }
  }
  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest("a.cite-link");
    if (link && reveal(link.dataset.target, true)) { event.preventDefault(); return; }
    const button = event.target.closest && event.target.closest("button.copy-cite");
    if (button) { event.preventDefault(); copy(button.dataset.ref, button); }
  });
  window.ragReveal = reveal;
  // The question box takes the focus without the page scrolling to it: on a phone it sits
  // below the chat, and the page should open at its top, under the title.
  function focusBox() {
    const box = document.querySelector("#question textarea");
    if (!box) return false;
    if (!document.activeElement || document.activeElement === document.body) {
      box.focus({preventScroll: true});
    }
    return true;
  }
  const waiting = new MutationObserver(() => { if (focusBox()) waiting.disconnect(); });
  waiting.observe(document.documentElement, {childList: true, subtree: true});
})();
</script>
"""

SHOW_CITATION_ONE = """() => { const hits = "#transcript-panel .passage.hit";
  const hit = document.querySelector(hits + "[data-cite='1']") || document.querySelector(hits);
  if (hit && window.ragReveal) { window.ragReveal(hit.id, false); } }"""

Ask = Callable[..., Answer]


def mount_options() -> dict:
    """Theme, style and script for `gr.mount_gradio_app`: none of them loads anything remote."""
    return {"theme": THEME, "css": CSS, "head": HEAD}


def build_ui(engine, *, transcripts: Mapping[str, Transcript], ask: Ask | None = None,
             concurrency_limit: int = 8) -> gr.Blocks:
    """The Gradio app; `ask(question, k=, previous=, sources=)` defaults to the library's, on
    `engine`."""
    if ask is None:
        def ask(question, *, k=3, previous=None, sources=None):
            return library_ask(engine, question, k=k, previous=previous, sources=sources)
    passages = _passages_by_source(engine)
    anchors = {name: f"t{i}" for i, name in enumerate(sorted(transcripts))}

    def render_transcripts(cited: list[Citation]) -> str:
        # Focusable and named, so a keyboard or screen-reader user can scroll it too.
        return ('<div class="transcript-scroll" tabindex="0" role="region" '
                'aria-label="Transcript / Transcription">') + "".join(
            render_transcript(t, anchors[name], passages.get(name, []), cited)
            for name, t in sorted(transcripts.items())) + "</div>"

    def respond(question: str, history: list, asked: list,
                chosen: list | None = None) -> Iterator[tuple]:
        history = list(history or [])
        asked = list(asked or [])
        if not (question or "").strip():
            yield "", history, gr.skip(), gr.skip(), asked
            return
        history.append({"role": "user", "content": plain(question)})
        history.append({"role": "assistant", "content": "…"})
        yield "", history, gr.skip(), gr.skip(), asked
        previous = asked[-1] if asked else None
        try:
            answer = ask(question, previous=previous, sources=list(chosen) if chosen else None)
        except QuestionError as exc:
            history[-1] = {"role": "assistant", "content": plain(str(exc))}
            yield "", history, gr.skip(), gr.skip(), asked
            return
        except Exception as exc:  # shown as a reply, not as a stuck "…"
            print(f"ui: ask failed: {type(exc).__name__}", file=sys.stderr)
            history[-1] = {"role": "assistant", "content": FAILED}
            yield "", history, gr.skip(), gr.skip(), asked
            return
        asked.append(question)
        for text in stream_message(answer):
            history[-1] = {"role": "assistant", "content": text}
            yield "", history, gr.skip(), gr.skip(), asked
            time.sleep(STREAM_PAUSE)
        yield ("", history, render_cards(answer, anchors, list(chosen or []), previous),
               render_transcripts(answer.citations), asked)

    def from_link(history: list, asked: list, chosen: list,
                  request: gr.Request) -> Iterator[tuple]:
        """`?q=question`, `&previous=question` when it follows up on one, and `&source=name`
        for each transcript it may cite."""
        question = request.query_params.get("q", "") if request else ""
        if not question.strip():  # leave alone what the user may already be typing
            yield (gr.skip(),) * 6
            return
        named = request.query_params.getlist("source")
        shown = [s for s in named if s in transcripts] if named else gr.skip()
        previous = request.query_params.get("previous", "")
        asked = [previous] if previous.strip() else asked
        for out in respond(question, history, asked, named or chosen):
            yield (*out, shown)

    def ask_api(question: str, k: int = 3, previous: str = "",
                sources: list[str] | None = None) -> dict:
        """Answer a question: the same JSON as `POST /api/ask`."""
        try:
            return ask(question, k=k, previous=previous or None, sources=sources).to_dict()
        except QuestionError as exc:
            raise gr.Error(str(exc), print_exception=False) from None

    with gr.Blocks(title="Interview answers", analytics_enabled=False) as demo:
        gr.Markdown("# Interroger l'entretien / Ask the interview\n"
                    "Answers are verbatim quotes from the transcript, each with its citation. "
                    "Les réponses sont des citations exactes de l'entretien.")
        asked = gr.State([])
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                # No maths: a "$$" typed or quoted is text (`plain` escapes the rest).
                chat = gr.Chatbot(label="Conversation", elem_id="chat", height=420,
                                  sanitize_html=True, render_markdown=True, line_breaks=True,
                                  latex_delimiters=[], allow_tags=False, feedback_options=None,
                                  buttons=["copy"])
                with gr.Row():
                    box = gr.Textbox(label="Question", elem_id="question", scale=5,
                                     placeholder="Posez une question / Ask a question",
                                     max_lines=4, max_length=1000)
                    send = gr.Button("Ask / Demander", variant="primary", scale=1,
                                     elem_id="ask-button")
                # Shown when there is a choice: none selected asks every transcript.
                chosen = gr.Dropdown(choices(transcripts), value=[], multiselect=True,
                                     label="Only these transcripts / Seulement ces entretiens",
                                     info="none: all / aucun : tous", elem_id="sources",
                                     visible=len(transcripts) > 1)
                gr.Examples(EXAMPLES, inputs=[box], label="Examples / Exemples")
                cards = gr.HTML("", elem_id="citations", js_on_load=None)
            with gr.Column(scale=2):
                gr.Markdown("## Transcript / Transcription")
                panel = gr.HTML(render_transcripts([]), elem_id="transcript-panel",
                                js_on_load=None)
        outputs = [box, chat, cards, panel, asked]
        events = dict(fn=respond, inputs=[box, chat, asked, chosen], outputs=outputs,
                      concurrency_limit=concurrency_limit, api_visibility="private",
                      show_progress="minimal")
        box.submit(**events).then(None, js=SHOW_CITATION_ONE)
        send.click(**events).then(None, js=SHOW_CITATION_ONE)
        demo.load(from_link, inputs=[chat, asked, chosen], outputs=[*outputs, chosen],
                  concurrency_limit=concurrency_limit, api_visibility="private",
                  show_progress="minimal").then(None, js=SHOW_CITATION_ONE)
        chat.clear(lambda: ([], "", render_transcripts([])), outputs=[asked, cards, panel],
                   api_visibility="private")
        gr.api(ask_api, api_name="ask", concurrency_limit=concurrency_limit)
    demo.queue(default_concurrency_limit=concurrency_limit)
    return demo


def plain(text: str) -> str:
    """Text to show as typed in the chat, which renders Markdown: every character that means
    something to Markdown (or to HTML) is backslash-escaped where it would, so no link, list,
    heading, tag or maths can come of it. `.`, `)` and `-`, common in prose, are escaped only
    where they start a list or a `www.` link, so that copied text stays readable."""
    text = _INDENT.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _MARKUP_CHARS.sub(r"\\\g<0>", text)
    text = _LIST_MARKER.sub(lambda m: f"{m[0][:-1]}\\{m[0][-1]}", text)
    text = _WWW.sub(r"\1\\.", text)
    # The chat's renderer swaps "%%%LATEX_BLOCK_0%%%" for maths it set aside, even unescaped.
    return _PERCENTS.sub(lambda m: "&#37;" * len(m[0]), text)


_INDENT = re.compile(r"^[ \t]+", re.MULTILINE)  # would make a code block; HTML drops it anyway
_MARKUP_CHARS = re.compile(r"[\\`*_\[\]#|~<>&$=+:@]")  # (`:` and `@` make bare links)
_LIST_MARKER = re.compile(r"^(?:\d{1,9}[.)]|-)", re.MULTILINE)
_WWW = re.compile(r"(www)\.", re.IGNORECASE)
_PERCENTS = re.compile(r"%{3,}")


def stream_message(answer: Answer) -> Iterator[str]:
    """The chat reply, growing quote by quote."""
    searched = ""
    if answer.searched and answer.searched != answer.question:
        searched = f"\n\n_Searched: {plain(answer.searched)}_"
    if answer.abstained:
        note = f"\n\nSee the passages marked \u201c{CLOSEST}\u201d." if answer.closest else ""
        yield f"{ABSTAINED}.{note}{searched}"
        return
    weak = WEAK_SPLIT if answer.answers_quoted > 1 else WEAK
    lines: list[str] = [f"_{weak}._"] if answer.weak else []
    for c in answer.citations:
        lines.append(f"\u201c{plain(c.text)}\u201d [{c.n}]")
        yield "\n\n".join(lines)
    yield "\n\n".join(lines) + searched


def render_cards(answer: Answer, anchors: Mapping[str, str],
                 sources: list[str] | None = None, previous: str | None = None) -> str:
    """A card per citation (or per closest passage when abstaining), under a permalink that
    asks again what was searched: a follow-up's keeps the question it follows."""
    query = f"?q={quote(answer.question)}"
    if previous and answer.searched != answer.question:
        query += f"&previous={quote(previous)}"
    query += "".join(f"&source={quote(s)}" for s in sources or [])
    link = f'<a class="permalink" href="{html.escape(query)}">Permalink</a>'
    if answer.abstained:
        head = f"<p class=\"cards-head\">{html.escape(ABSTAINED)}. {link}</p>"
        body = "".join(_card(c, anchors, closest=True) for c in answer.closest)
    else:
        sure = "" if answer.confidence is None else \
            f' · <span class="confidence">confidence {answer.confidence:.2f}</span>'
        head = f'<p class="cards-head">Sources{sure} · {link}</p>'
        body = "".join(_card(c, anchors) for c in answer.citations)
    return f'<div class="cards">{head}{body}</div>'


def _card(c: Citation, anchors: Mapping[str, str], *, closest: bool = False) -> str:
    e = html.escape
    target = f"{anchors.get(c.source, 't0')}-p{c.start}"
    label = CLOSEST if closest else f"[{c.n}]"
    meta = " · ".join(x for x in (f"Answer {c.answer}", c.date, c.outlet) if x)
    return (f'<article class="cite-card{" closest" if closest else ""}" data-n="{c.n}">'
            f'<p class="cite-label">{e(label)}</p>'
            f"<blockquote>\u201c{e(c.text)}\u201d</blockquote>"
            f'<p class="cite-question">In answer to: {e(c.question)}</p>'
            f'<p class="cite-meta">{e(meta)}</p>'
            f'<p class="cite-actions"><a class="cite-link" href="#{target}" '
            f'data-target="{target}">Show in transcript</a>'
            f'<button type="button" class="copy-cite" data-ref="{e(c.reference())}">'
            f"Copy citation</button></p>"
            f'<code class="cite-ref">{e(c.reference())}</code></article>')


def choices(transcripts: Mapping[str, Transcript]) -> list[tuple[str, str]]:
    """(label, source) for each transcript: who, where and when, and the file when two read
    the same."""
    def label(t: Transcript) -> str:
        speaker = t.turns[0].speaker if t.turns else ""
        return " · ".join(x for x in (speaker, t.outlet, t.date) if x) or t.source

    labels = {name: label(t) for name, t in transcripts.items()}
    seen = Counter(labels.values())
    return sorted((f"{x} ({name})" if seen[x] > 1 else x, name) for name, x in labels.items())


def render_transcript(t: Transcript, anchor: str, spans: list[tuple[int, int]],
                      cited: list[Citation]) -> str:
    """The interview as a conversation, every passage anchored, the cited ones highlighted."""
    e = html.escape
    marks = {(c.start, c.end): c.n for c in cited if c.source == t.source}
    title = " · ".join(x for x in (t.outlet, t.date) if x) or t.source
    parts = [f'<div class="transcript"><h3>{e(title)}</h3>']
    for turn in t.turns:
        parts.append(f'<div class="turn turn-q" id="{anchor}-q{turn.number}">'
                     f'<span class="who">Interviewer</span><p>{e(turn.question)}</p></div>')
        inside = [s for s in _spans(spans, marks) if turn.start <= s[0] and s[1] <= turn.end]
        body, at = [], turn.start
        for start, end in inside:
            body.append(e(t.text[at:start]))
            n = marks.get((start, end))
            hit = f' hit" data-cite="{n}' if n else ""
            body.append(f'<span class="passage{hit}" id="{anchor}-p{start}">'
                        f"{e(t.text[start:end])}</span>")
            at = end
        body.append(e(t.text[at:turn.end]))
        parts.append(f'<div class="turn turn-a" id="{anchor}-a{turn.number}">'
                     f'<span class="who">{e(turn.speaker)} · answer {turn.number}</span>'
                     f'<p>{"".join(body)}</p></div>')
    parts.append("</div>")
    return "".join(parts)


def _spans(spans: list[tuple[int, int]], marks: Mapping[tuple[int, int], int]):
    """Passages in order, cited spans winning over any passage they overlap."""
    chosen = sorted(marks)
    for span in spans:
        if not any(span[0] < b and a < span[1] for a, b in chosen):
            chosen.append(span)
    kept, last = [], -1
    for start, end in sorted(chosen):
        if start >= last:
            kept.append((start, end))
            last = end
    return kept


def _passages_by_source(engine) -> dict[str, list[tuple[int, int]]]:
    corpus = engine.index.corpus
    out: dict[str, list[tuple[int, int]]] = {}
    for p in corpus.passages:
        out.setdefault(corpus.documents[p.doc].source, []).append((p.start, p.end))
    return out


def main() -> int:
    """`python ui.py`: the same server as `rag serve`, configured from the environment."""
    from rag.cli import main as cli

    argv = ["serve", "--index", os.environ.get("RAG_INDEX", "index")]
    return cli(argv + sys.argv[1:])


if __name__ == "__main__":
    sys.modules.setdefault("ui", sys.modules[__name__])
    sys.exit(main())
