"""The HTTP API and the Gradio endpoint, against a real server over the real transcript."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys

import httpx
import pytest

from tests.conftest import GOLD, ROOT, TRANSCRIPT
from tests.web_fixtures import running, wait_ready

ALLOWED = "http://allowed.example"


@pytest.fixture(scope="module")
def server(engine):
    from rag.server import create_app

    with running(create_app(engine, cors_origins=[ALLOWED])) as url:
        yield url


@pytest.fixture(scope="module")
def text():
    return TRANSCRIPT.read_text(encoding="utf-8")


def ask(server, body, **kw) -> httpx.Response:
    return httpx.post(f"{server}/api/ask", json=body, timeout=60, **kw)


def check_citations(answer: dict, text: str) -> None:
    assert answer["citations"]
    for c in answer["citations"]:
        assert c["text"] == text[c["start"]:c["end"]]
        assert c["source"] == "data/" + TRANSCRIPT.name
        assert c["speaker"] == "Antony Blinken"
        assert (c["date"], c["outlet"]) == ("2021-10", "France 2")
        assert f"\u201c{c['text']}\u201d [{c['n']}]" in answer["answer"]


def test_french_question(server, text):
    r = ask(server, {"question": "Que dit Blinken du Sahel ?"})
    assert r.status_code == 200
    answer = r.json()
    assert not answer["abstained"]
    check_citations(answer, text)
    assert "Sahel" in answer["citations"][0]["text"]
    assert answer["citations"][0]["answer"] == 3


def test_english_question_and_k(server, text):
    r = ask(server, {"question": "What did Blinken and Macron discuss?", "k": 1})
    assert r.status_code == 200
    answer = r.json()
    assert not answer["abstained"] and len(answer["citations"]) == 1
    assert 0.5 <= answer["confidence"] <= 1
    check_citations(answer, text)


def test_follow_up_searches_with_the_previous_question(server):
    answer = ask(server, {"question": "Et au Sahel ?",
                          "previous": "Que disent Biden et Macron ?"}).json()
    assert answer["question"] == "Et au Sahel ?"
    assert answer["searched"] == "Que disent Biden et Macron ? Et au Sahel ?"


def test_abstains_with_closest_passages(server, text):
    answer = ask(server, {"question": "Who won the football world cup?"}).json()
    assert answer["abstained"] and answer["citations"] == []
    assert 0 <= answer["confidence"] < 0.5
    assert answer["closest"]
    assert all(c["text"] == text[c["start"]:c["end"]] for c in answer["closest"])


def test_a_batch_is_answered_as_each_question_alone(server, text):
    """`POST /api/batch` gives, in order, what `/api/ask` gives for each question; a question
    the engine refuses gets its own error and the others their answers."""
    questions = [{"question": "Que dit Blinken du Sahel ?", "k": 2},
                 {"question": "   "},
                 {"question": "et au Sahel ?",
                  "previous": "Comment coopérez-vous avec la France ?"},
                 {"question": "Recette de la blanquette de veau"},
                 {"question": "How does Blinken define engagement?", "k": 1}]
    r = httpx.post(f"{server}/api/batch", json={"questions": questions}, timeout=60)
    assert r.status_code == 200
    answers = r.json()["answers"]
    assert len(answers) == len(questions)
    assert "empty" in answers[1]["error"]
    for q, got in zip(questions, answers, strict=True):
        if "error" in got:
            continue
        assert got == ask(server, q).json()
        for c in got["citations"] + got["closest"]:
            assert c["text"] == text[c["start"]:c["end"]]
    assert answers[0]["citations"][0]["answer"] == 3 and len(answers[0]["citations"]) == 2
    assert answers[3]["abstained"] and answers[4]["citations"][0]["answer"] == 5


def test_the_schema_tells_what_a_batch_answers_rather_than_refuses(server):
    """A blank question is refused by `/api/ask` but answered with its own error in a batch,
    so only `/api/ask` declares the pattern a question must match: a client validating its
    requests against the schema, or a contract test, sees the difference."""
    schemas = httpx.get(f"{server}/openapi.json").json()["components"]["schemas"]
    assert "pattern" in schemas["AskRequest"]["properties"]["question"]
    assert "pattern" not in schemas["BatchQuestion"]["properties"]["question"]
    r = httpx.post(f"{server}/api/batch", json={"questions": [{"question": "\u200b \t"}]},
                   timeout=60)
    assert r.status_code == 200 and "empty" in r.json()["answers"][0]["error"]


@pytest.mark.parametrize("body, message", [
    ({"questions": []}, "questions is empty"),
    ({"questions": [{"question": "Sahel ?"}] * 33}, "the limit is 32"),
    ({"questions": [{"question": "Sahel ?"}, {"question": ""}]}, "questions.1.question is empty"),
    ({"questions": [{"question": "Sahel ?", "k": 99}]}, "questions.0.k must be from 1 to 20"),
    ({"questions": ["Sahel ?"]}, "questions.0 must be a JSON object"),
    ({"questions": "Sahel ?"}, "questions must be a list"),
    ({"question": "Sahel ?"}, "questions is required"),
])
def test_a_malformed_batch_is_refused_whole(server, body, message):
    r = httpx.post(f"{server}/api/batch", json=body, timeout=60)
    assert r.status_code == 422
    assert message in r.json()["error"]


@pytest.mark.parametrize("field", ["question", "previous"])
def test_the_length_limit_counts_as_the_library_does(server, engine, field):
    """Characters as sent, as the schema's `maxLength` counts them: the API and `ask` take and
    refuse the same texts, whatever the form (decomposed, with invisible characters) they
    come in; over the limit, the message names the field and the limit."""
    from rag import QuestionError
    from rag import ask as ask_library

    taken = ["x" * 1000, "e\u0301" * 500, "\u200b" * 999 + "x"]
    refused = ["x" * 1001, "e\u0301" * 501, "\u200b" * 1000 + "x"]
    for text in taken + refused:
        body = {"question": "Sahel ?", field: text}
        r = ask(server, body)
        named = {"question": {"question": text}, "previous": {"previous": text}}[field]
        try:
            ask_library(engine, **{"question": "Sahel ?", **named})
            library = 200
        except QuestionError:
            library = 422
        assert r.status_code == library == (200 if text in taken else 422), (text[:5], r.text)
        if text in refused:
            assert r.json()["error"] == f"{field} is too long (the limit is 1000 characters)"
    r = httpx.post(f"{server}/api/batch", json={"questions": [body]}, timeout=60)
    assert r.json()["error"] == f"questions.0.{field} is too long (the limit is 1000 characters)"


def test_health(server):
    r = httpx.get(f"{server}/api/health")
    assert r.status_code == 200
    health = r.json()
    assert health["status"] == "ready"
    assert health["manifest"]["sources"][0]["path"] == "data/" + TRANSCRIPT.name
    assert "use-multilingual-v3" in health["models"]


@pytest.mark.parametrize("body, status", [
    ({"question": ""}, 422),
    ({"question": "   \u200b  "}, 422),
    ({"question": "\u2060"}, 422),
    ({"question": "\u00ad\U000e0041\ufe0f \u180e"}, 422),
    ({}, 422),
    ({"question": 5}, 422),
    ({"question": ["Sahel"]}, 422),
    ({"question": None}, 422),
    ({"question": "Sahel", "k": 0}, 422),
    ({"question": "Sahel", "k": 21}, 422),
    ({"question": "Sahel", "k": "3"}, 422),
    ({"question": "Sahel", "k": 2.5}, 422),
    ({"question": "Sahel", "k": True}, 422),
    ({"question": "Sahel", "previous": 3}, 422),
    ({"question": "x" * 1001}, 422),
    (["Sahel"], 422),
    ("Sahel", 422),
])
def test_bad_input_is_a_4xx_with_an_error(server, body, status):
    r = ask(server, body)
    assert r.status_code == status
    assert_clean_error(r)


@pytest.mark.parametrize("raw", [b"{bad", b"", b"\xff\xfe", b'{"question": "a"',
                                 b'{"question": "\xe9t\xe9"}', b"[" * 5000 + b"]" * 5000])
def test_malformed_json_is_400(server, raw):
    r = httpx.post(f"{server}/api/ask", content=raw,
                   headers={"content-type": "application/json"})
    assert r.status_code in (400, 422)
    assert_clean_error(r)
    if raw:
        assert r.status_code == 400
        assert r.json()["error"].startswith("the body is not valid JSON")


def test_huge_bodies_are_413(server):
    big = json.dumps({"question": "a" * (70 * 1024)}).encode()
    r = httpx.post(f"{server}/api/ask", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert_clean_error(r)

    def chunks():  # no Content-Length: the limit must hold while reading
        yield b'{"question": "'
        for _ in range(80):
            yield b"a" * 1024
        yield b'"}'
    r = httpx.post(f"{server}/api/ask", content=chunks(),
                   headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert_clean_error(r)


def test_ui_routes_have_a_body_limit_too(server):
    body = json.dumps({"data": ["Sahel " * 300_000]}).encode()
    r = httpx.post(f"{server}/gradio_api/call/ask", content=body,
                   headers={"content-type": "application/json"}, timeout=60)
    assert r.status_code == 413
    assert_clean_error(r)


def test_lone_surrogates_are_read_as_the_library_reads_them(server):
    body = json.dumps({"question": "\ud800 Que dit Blinken du Sahel ?"}).encode("ascii")
    r = httpx.post(f"{server}/api/ask", content=body,
                   headers={"content-type": "application/json"})
    assert r.status_code == 200
    assert r.json()["question"] == "? Que dit Blinken du Sahel ?"


def test_transcripts_let_a_client_check_every_citation(server, text):
    listed = httpx.get(f"{server}/api/transcripts").json()["transcripts"]
    assert [t["source"] for t in listed] == ["data/" + TRANSCRIPT.name]
    assert listed[0]["chars"] == len(text) and listed[0]["answers"] == 5
    assert listed[0]["sha256"] == hashlib.sha256(TRANSCRIPT.read_bytes()).hexdigest()
    r = httpx.get(f"{server}/api/transcript", params={"source": listed[0]["source"]})
    assert r.status_code == 200
    transcript = r.json()
    assert transcript["text"] == text
    turns = {t["answer"]: t for t in transcript["turns"]}
    assert sorted(turns) == [1, 2, 3, 4, 5]
    for question in ("Que dit Blinken du Sahel ?", "Did France feel betrayed?",
                     "How does Blinken define engagement?"):
        citations = ask(server, {"question": question, "k": 5}).json()["citations"]
        assert citations, question
        for c in citations:
            turn = turns[c["answer"]]
            assert transcript["text"][c["start"]:c["end"]] == c["text"]
            assert turn["start"] <= c["start"] < c["end"] <= turn["end"]
            assert text[turn["question_start"]:turn["question_end"]] == turn["question"]
            assert turn["question"] == c["question"]


@pytest.mark.parametrize("params, status", [
    ({"source": "data/other.txt"}, 404), ({"source": "../data/" + TRANSCRIPT.name}, 404),
    ({"source": str(TRANSCRIPT)}, 404), ({"source": ""}, 404), ({}, 422)])
def test_unknown_transcripts_are_a_clean_error(server, params, status):
    r = httpx.get(f"{server}/api/transcript", params=params)
    assert r.status_code == status
    assert_clean_error(r)


def test_a_whole_number_written_as_float_is_a_whole_number(server):
    """JSON has one number type: `2.0` is 2 (JSON Schema's integer), `2.5` is refused above."""
    r = ask(server, {"question": "Que dit Blinken du Sahel ?", "k": 2.0})
    assert r.status_code == 200
    assert 1 <= len(r.json()["citations"]) <= 2


def test_wrong_method_and_path_are_json(server):
    r = httpx.get(f"{server}/api/ask")
    assert r.status_code == 405
    assert_clean_error(r)
    r = httpx.get(f"{server}/api/nothing")
    assert r.status_code == 404
    assert_clean_error(r)


def assert_clean_error(r: httpx.Response) -> None:
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]
    for leak in ("Traceback", str(ROOT), "/tmp", ".py", "site-packages"):
        assert leak not in r.text


def test_openapi_describes_the_contract(server):
    schema = httpx.get(f"{server}/openapi.json").json()
    ask_op = schema["paths"]["/api/ask"]["post"]
    assert "AskRequest" in json.dumps(ask_op["requestBody"])
    assert "AnswerOut" in json.dumps(ask_op["responses"]["200"])
    props = schema["components"]["schemas"]["AskRequest"]["properties"]
    assert props["k"]["maximum"] == 20 and props["k"]["minimum"] == 1
    assert "/api/health" in schema["paths"]
    assert "TranscriptOut" in json.dumps(schema["paths"]["/api/transcript"]["get"])


def test_cors_only_for_configured_origins(server):
    preflight = {"access-control-request-method": "POST",
                 "access-control-request-headers": "content-type"}
    r = httpx.options(f"{server}/api/ask", headers={"origin": ALLOWED, **preflight})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == ALLOWED
    r = ask(server, {"question": "Sahel"}, headers={"origin": ALLOWED})
    assert r.headers["access-control-allow-origin"] == ALLOWED
    r = ask(server, {"question": "Sahel"}, headers={"origin": "http://evil.example"})
    assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize("origin,method,refused", [
    ("http://evil.example", "POST", "origin"),
    (ALLOWED, "DELETE", "method"),
    ("http://evil.example", "PUT", "origin, method"),
])
def test_a_refused_preflight_is_a_json_error(server, origin, method, refused):
    """A browser's preflight from an origin (or for a method) not allowed is refused like any
    other API request: JSON, naming what was refused and the option that allows it."""
    r = httpx.options(f"{server}/api/ask", headers={
        "origin": origin, "access-control-request-method": method})
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/json"
    assert ("access-control-allow-origin" in r.headers) == (origin == ALLOWED)
    error = r.json()["error"]
    assert f"(not allowed: {refused})" in error and "--cors-origins" in error


@pytest.mark.parametrize("path", ["//api/ask", "/api//ask", "///api///ask"])
def test_doubled_slashes_reach_the_api(server, path):
    """A client that joins a base address ending in / with a path starting with one."""
    r = httpx.post(f"{server}{path}", json={"question": "Que dit Blinken du Sahel ?"},
                   timeout=60)
    assert r.status_code == 200
    assert r.json() == ask(server, {"question": "Que dit Blinken du Sahel ?"}).json()
    assert httpx.get(f"{server}//api//health").json()["status"] == "ready"
    r = httpx.get(f"{server}//api//nothing")
    assert r.status_code == 404 and r.json() == {"error": "not found"}


def test_only_configured_origins_may_frame_the_app(server):
    for path in ("/", "/api/health"):
        r = httpx.get(f"{server}{path}")
        assert r.headers["content-security-policy"] == f"frame-ancestors 'self' {ALLOWED}"
        assert "x-frame-options" not in r.headers


def test_ui_page_is_served(server):
    r = httpx.get(f"{server}/")
    assert r.status_code == 200 and "<html" in r.text.lower()
    assert "fonts.googleapis" not in r.text


def test_parallel_requests(server):
    from concurrent.futures import ThreadPoolExecutor

    questions = ["Que dit Blinken du Sahel ?", "What about the Indo-Pacific?"] * 4
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda q: ask(server, {"question": q}), questions))
    assert all(r.status_code == 200 for r in results)
    assert results[0].json() == results[2].json()


def test_batches_sent_at_once_keep_their_own_answers(server):
    """Batches and single questions sent together share the answer worker; each request gets
    back its own answers, in its own order."""
    from concurrent.futures import ThreadPoolExecutor

    from rag.evaluate import read_gold

    questions = [g["question"] for g in read_gold(GOLD)][:24]
    alone = {q: ask(server, {"question": q}).json() for q in questions}
    batches = [questions[i::4] for i in range(4)]

    def send(batch):
        if len(batch) == 1:
            return [ask(server, {"question": batch[0]}).json()]
        body = {"questions": [{"question": q} for q in batch]}
        return httpx.post(f"{server}/api/batch", json=body, timeout=60).json()["answers"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(send, batches + [[q] for q in questions[:4]]))
    for batch, answers in zip(batches + [[q] for q in questions[:4]], results, strict=True):
        assert [a["question"] for a in answers] == batch
        assert answers == [alone[q] for q in batch]


def test_gradio_client_predict(server, text):
    from gradio_client import Client

    client = Client(server + "/", verbose=False)
    answer = client.predict("Que dit Blinken du Sahel ?", api_name="/ask")
    assert answer == ask(server, {"question": "Que dit Blinken du Sahel ?"}).json()
    check_citations(answer, text)
    with pytest.raises(Exception, match="empty"):
        client.predict("  ", api_name="/ask")


def test_library_does_not_import_gradio():
    code = ("import sys, rag, rag.cli, rag.server; "
            "sys.exit('gradio' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd="/").returncode == 0


def test_ui_keeps_gradio_from_rewriting_its_stub_files():
    """The server's start depends on it: Gradio otherwise re-parses its sources on import."""
    code = ("import ui, gradio.component_meta as meta; "
            "print(meta.create_or_modify_pyi.__module__)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ui"]


def test_rag_serve_command(project):
    """`rag serve` from a project folder: loads the index, serves the API and the UI. With
    `--port 0` it takes a free port and says which."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_CORS_ORIGINS": ALLOWED}
    rag = os.path.join(os.path.dirname(sys.executable), "rag")
    proc = subprocess.Popen([rag, "serve", "--port", "0"], cwd=project, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        said = ""
        while "serving on" not in said and proc.poll() is None:
            said = proc.stdout.readline()
        url = re.fullmatch(r"rag: serving on (http://127\.0\.0\.1:[1-9]\d*)/\n", said)[1]
        wait_ready(url, timeout=120, alive=lambda: proc.poll() is None)
        answer = ask(url, {"question": "Que dit Blinken du Sahel ?"}).json()
        assert answer["citations"][0]["answer"] == 3
        page = httpx.get(f"{url}/")
        assert page.status_code == 200
        assert ALLOWED in page.headers["content-security-policy"]
    finally:
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:  # a lingering queue worker: no need to wait it out
            proc.kill()
            out, _ = proc.communicate(timeout=10)
    assert "Traceback" not in out, out


def test_rag_serve_on_a_port_in_use_says_so_at_once(project):
    """Before the models load, so in about the time Python takes to start."""
    rag = os.path.join(os.path.dirname(sys.executable), "rag")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for args, message in ((["--port", str(port)], "Address already in use"),
                              (["--port", "65536"], "a number from 0 to 65535"),
                              (["--host", "no-such-host.invalid"], "cannot listen on")):
            done = subprocess.run([rag, "serve", *args], cwd=project, capture_output=True,
                                  text=True, timeout=60, env={**os.environ,
                                                              "HF_HUB_OFFLINE": "1"})
            assert done.returncode == 1 and message in done.stderr, done.stderr
            assert done.stderr.count("\n") == 1 and "serving on" not in done.stderr


def test_queued_questions_are_answered_together_and_fail_alone(engine):
    """Questions that arrive while the worker is busy wait and are answered as one batch by
    the real engine; an empty one fails alone, and every answer is the one `ask` gives."""
    from rag import ask as ask_one
    from rag.errors import QuestionError
    from rag.server import LockedAsk, answer_together

    sizes = []

    def counted(engine, jobs):  # the real batch, with its sizes recorded
        sizes.append(len(jobs))
        return answer_together(engine, jobs)

    locked = LockedAsk(engine, batch=counted)
    questions = ["Que dit Blinken du Sahel ?", "   ", "What about AUKUS?",
                 "Pourquoi parle-t-il de confiance ?", "Qui est Jean-Yves Le Drian ?"]
    futures = [locked.submit(q) for q in questions]  # far faster than one answer
    assert isinstance(futures[1].exception(60), QuestionError)
    for question, future in zip(questions, futures, strict=True):
        if question.strip():
            assert future.result(60) == ask_one(engine, question)
    assert sum(sizes) == len(questions) and max(sizes) > 1


def test_waiting_questions_are_answered_as_ask_answers_them(engine):
    """The default batch (`ask_many`) keeps each job's own k and previous question, and an
    empty question fails alone."""
    from rag import ask as ask_one
    from rag import server
    from rag.errors import QuestionError

    jobs = [server.Job("Que dit Blinken du Sahel ?"), server.Job("   "),
            server.Job("What about AUKUS?", k=5),
            server.Job("Et sur la Chine ?", previous="Que pense-t-il de l'Iran ?")]
    outcomes = server.answer_together(engine, jobs)
    assert isinstance(outcomes[1], QuestionError)
    for job, got in zip(jobs, outcomes, strict=True):
        if job.question.strip():
            assert got == ask_one(engine, job.question, k=job.k, previous=job.previous)


def test_settle_heap_takes_what_is_loaded_out_of_full_collections():
    """`rag serve` calls it once everything is loaded: the garbage collector's full passes
    then skip the engine and the libraries, while what is made later is still collected."""
    import gc

    from rag.server import settle_heap

    gc.unfreeze()
    loaded = [object() for _ in range(1000)]
    try:
        settle_heap()
        assert gc.get_freeze_count() >= len(loaded)
        later = []
        later.append(later)  # a cycle made after the freeze
        del later
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
