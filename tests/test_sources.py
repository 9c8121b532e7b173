"""Questions that name the transcripts they may cite: the library, the command line and the
HTTP API, over two real interviews indexed together with the real models."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

from tests.conftest import SECOND_NAME, TRANSCRIPT
from tests.web_fixtures import running

BLINKEN = f"data/{TRANSCRIPT.name}"
COSTA = f"data/{SECOND_NAME}"
SAHEL = "Que dit Blinken du Sahel ?"
GAS = "What will be done about household gas bills?"


def sources_of(answer) -> set[str]:
    return {c.source for c in answer.citations + answer.closest}


def verbatim(root, answer) -> bool:
    return all((root / c.source).read_text(encoding="utf-8")[c.start:c.end] == c.text
               for c in answer.citations + answer.closest)


def test_each_question_is_answered_from_the_interview_that_addresses_it(two_engine, two_project):
    from rag import ask

    sahel, gas = ask(two_engine, SAHEL), ask(two_engine, GAS)
    assert not sahel.abstained and sources_of(sahel) >= {BLINKEN}
    assert sahel.citations[0].source == BLINKEN and sahel.citations[0].answer == 3
    assert not gas.abstained and gas.citations[0].source == COSTA
    assert gas.citations[0].speaker == "Maria Costa" and gas.citations[0].outlet == "Radio Example"
    assert verbatim(two_project, sahel) and verbatim(two_project, gas)


def test_sources_keep_citations_to_the_named_transcripts(two_engine, two_project):
    from rag import ask

    for question in (SAHEL, GAS, "Who said what about France?"):
        for chosen in ([BLINKEN], [COSTA]):
            answer = ask(two_engine, question, k=5, sources=chosen)
            assert sources_of(answer) <= set(chosen), (question, chosen)
            assert answer.citations or answer.closest
            assert verbatim(two_project, answer)


def test_a_question_only_the_other_interview_answers_abstains(two_engine):
    """Its words are in the index, but not in the transcript it may cite: the abstention rule
    reads the words of the selection, not of the whole index."""
    from rag import ask

    assert not ask(two_engine, GAS).abstained
    assert ask(two_engine, GAS, sources=[BLINKEN]).abstained
    assert ask(two_engine, SAHEL, sources=[COSTA]).abstained
    assert not ask(two_engine, SAHEL, sources=[BLINKEN]).abstained


def test_naming_every_transcript_is_the_same_as_naming_none(two_engine):
    from rag import ask

    for question in (SAHEL, GAS):
        assert ask(two_engine, question, sources=[COSTA, BLINKEN]) == ask(two_engine, question)


def test_unknown_or_no_transcript_is_a_clear_error(two_engine):
    from rag import QuestionError, ask

    with pytest.raises(QuestionError, match="no transcript named 'data/nope.txt'.*costa"):
        ask(two_engine, SAHEL, sources=["data/nope.txt"])
    with pytest.raises(QuestionError, match="no transcript selected"):
        ask(two_engine, SAHEL, sources=[])
    assert sources_of(ask(two_engine, GAS, sources=COSTA)) == {COSTA}  # one name as a string
    assert sources_of(ask(two_engine, GAS, sources=(s for s in [COSTA]))) == {COSTA}


def test_ask_many_keeps_each_requests_own_sources(two_engine):
    from rag import QuestionError, Request, ask, ask_many

    requests = [Request(SAHEL, sources=[BLINKEN]), Request(GAS, sources=(s for s in [COSTA])),
                Request(GAS, sources=["data/nope.txt"]), Request(SAHEL, sources=[COSTA]),
                Request(GAS)]
    out = ask_many(two_engine, requests)
    assert isinstance(out[2], QuestionError)
    for request, answer in zip(requests, out, strict=True):
        if request is not requests[2]:
            assert answer == ask(two_engine, request.question, sources=request.sources)
    assert sources_of(out[1]) == {COSTA} and not out[1].abstained
    assert out[3].abstained


@pytest.mark.parametrize("flat", [20_000, 4], ids=["exact", "index"])
def test_a_selection_past_the_candidate_pool_still_cites_only_itself(two_project, embedders,
                                                                      monkeypatch, flat):
    """With a pool of two candidates per signal, a selection of more passages than four pools
    is searched for its nearest passages: exactly, or (past the exact-search limit, lowered
    here to run on a small corpus) through the index, whose nearest mostly lie elsewhere."""
    from rag import Weights, ask, retrieve
    from rag.index import load_index

    monkeypatch.setattr(retrieve, "FLAT_LIMIT", flat)
    index = load_index(two_project / "index", root=two_project)
    small = retrieve.open_engine(index, embedders=dict(embedders), weights=Weights(candidates=2))
    blinken = sum(d.source == BLINKEN for p in index.corpus.passages
                  for d in [index.corpus.documents[p.doc]])
    assert blinken > 4 * 2
    for question in (GAS, "coal plants and wind farms", SAHEL):
        answer = ask(small, question, k=5, sources=[BLINKEN])
        assert answer.citations or answer.closest
        assert sources_of(answer) == {BLINKEN}, question
        assert answer == ask(small, question, k=5, sources=[BLINKEN])


def test_cli_source(two_project):
    env = dict(os.environ, HF_HUB_OFFLINE="1")

    def rag(*args):
        return subprocess.run([sys.executable, "-m", "rag.cli", "ask", "--index", "index", *args],
                              cwd=two_project, env=env, capture_output=True, text=True,
                              timeout=300)

    done = rag("--json", "--source", COSTA, GAS)
    assert done.returncode == 0, done.stderr
    assert {c["source"] for c in json.loads(done.stdout)["citations"]} == {COSTA}
    done = rag("--json", "--source", COSTA, SAHEL)
    assert done.returncode == 0 and json.loads(done.stdout)["abstained"]
    done = rag("--source", "data/nope.txt", SAHEL)
    assert done.returncode == 2 and "no transcript named 'data/nope.txt'" in done.stderr
    assert "Traceback" not in done.stderr


def test_http_sources(two_engine):
    from rag.server import create_app

    with running(create_app(two_engine, ui=False)) as url:
        schema = httpx.get(f"{url}/openapi.json").json()["components"]["schemas"]["AskRequest"]
        listed = schema["properties"]["sources"]["anyOf"][0]["items"]["enum"]
        assert sorted(listed) == sorted([BLINKEN, COSTA])

        def post(body):
            return httpx.post(f"{url}/api/ask", json=body, timeout=60)

        found = post({"question": GAS, "sources": [COSTA], "k": 5})
        assert found.status_code == 200
        assert {c["source"] for c in found.json()["citations"]} == {COSTA}
        assert post({"question": GAS, "sources": [BLINKEN]}).json()["abstained"]
        assert post({"question": GAS, "sources": None}).json()["citations"][0]["source"] == COSTA
        for body, message in (({"sources": ["data/nope.txt"]}, "not an indexed transcript"),
                              ({"sources": []}, "sources is empty"),
                              ({"sources": COSTA}, "sources must be a list"),
                              ({"sources": [1]}, "not an indexed transcript")):
            refused = post({"question": GAS} | body)
            assert refused.status_code == 422, body
            assert message in refused.json()["error"], refused.json()


def test_the_page_names_transcripts_by_who_where_and_when(two_project):
    """The page's list: speaker, outlet and date; the file too when two would read the same."""
    from rag.server import load_ui
    from rag.transcript import read_transcript

    ui = load_ui()
    blinken, costa = (read_transcript(two_project / s, source=s) for s in (BLINKEN, COSTA))
    assert ui.choices({BLINKEN: blinken, COSTA: costa}) == [
        ("Antony Blinken · France 2 · 2021-10", BLINKEN),
        ("Maria Costa · Radio Example · 2022-03", COSTA)]
    again = read_transcript(two_project / BLINKEN, source="data/copy.txt")
    labels = [label for label, _ in ui.choices({BLINKEN: blinken, "data/copy.txt": again})]
    assert labels == [f"Antony Blinken · France 2 · 2021-10 ({BLINKEN})",
                      "Antony Blinken · France 2 · 2021-10 (data/copy.txt)"]
