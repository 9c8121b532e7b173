"""Every hostile or odd question gets its expected outcome, from the Python API and the CLI."""

import json
import subprocess
import sys

import pytest

from rag import QuestionError, ask

from .bad_inputs import CASES


def _outcome(answer) -> str:
    return "abstain" if answer.abstained else f"answer {answer.citations[0].answer}"


def test_table_is_large_enough():
    assert len(CASES) >= 30
    assert {expected.split()[0] for _, _, expected in CASES} == {"error", "abstain", "answer"}


@pytest.mark.parametrize("case, question, expected", CASES, ids=[c[0] for c in CASES])
def test_python_api(engine, case, question, expected):
    if expected == "error":
        with pytest.raises(QuestionError):
            ask(engine, question)
    else:
        assert _outcome(ask(engine, question)) == expected


def test_cli_batch(project):
    """All cases through `rag ask --json --batch -`, one process, one line each, in order."""
    # A batch file holds one question per line, so line breaks inside a case are spaces here;
    # a file is UTF-8, so a lone surrogate is written as "?", as `ask` reads it.
    lines = [q.replace("\n", " ").replace("\r", " ") for _, q, _ in CASES]
    payload = "\n".join(lines) + "\n"
    out = subprocess.run([sys.executable, "-m", "rag.cli", "ask", "--json", "--batch", "-"],
                         cwd=project, input=payload.encode("utf-8", "replace"),
                         capture_output=True, timeout=600)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    assert b"Traceback" not in out.stderr
    records = [json.loads(line) for line in out.stdout.decode("utf-8").splitlines()]
    expected = [(c, e) for (c, _, e), line in zip(CASES, lines, strict=True) if line.strip()]
    assert len(records) == len(expected)
    for record, (case, outcome) in zip(records, expected, strict=True):
        if outcome == "error":
            assert "error" in record, case
        else:
            got = "abstain" if record["abstained"] else f"answer {record['citations'][0]['answer']}"
            assert got == outcome, case


@pytest.mark.parametrize("query, k, message", [
    (None, 5, "must be text"), (b"Sahel", 5, "must be text"), ("Sahel", 0, "k must be"),
    ("Sahel", -1, "k must be"), ("Sahel", "3", "k must be"), ("Sahel", True, "k must be"),
])
def test_search_refuses_what_it_cannot_rank(engine, query, k, message):
    """The lower-level search, too: a clear QuestionError, not an AttributeError from deep
    inside nor, for a negative k, all but the last passage."""
    from rag import search, search_many

    with pytest.raises(QuestionError, match=message):
        search(engine, query, k=k)
    with pytest.raises(QuestionError, match=message):
        search_many(engine, ["Sahel", query], k=k)


def test_search_many_takes_a_list_not_one_string(engine):
    from rag import search, search_many

    with pytest.raises(QuestionError, match="list of queries"):
        search_many(engine, "Sahel")
    many = search_many(engine, ("Sahel ?", "Le Drian ?"), k=3)
    assert [[h.passage.id for h in hits] for hits in many] == \
        [[h.passage.id for h in search(engine, q, k=3)] for q in ("Sahel ?", "Le Drian ?")]
    assert len(search(engine, "Sahel ?", k=10**9)) == len(engine.index.corpus.passages)


def test_ask_many_takes_questions_as_text_and_refuses_the_odd_one_in_place(engine):
    """A list of strings is the natural call; a lone string or a None among them is refused
    clearly, the None in its place without failing the others."""
    from rag import Request, ask_many

    answers = ask_many(engine, ["Que dit Blinken du Sahel ?", None,
                                Request("Qui est Jean-Yves Le Drian ?", k=1)])
    assert answers[0] == ask(engine, "Que dit Blinken du Sahel ?")
    assert isinstance(answers[1], QuestionError) and "Request" in str(answers[1])
    assert answers[2] == ask(engine, "Qui est Jean-Yves Le Drian ?", k=1)
    with pytest.raises(QuestionError, match="list of questions"):
        ask_many(engine, "Sahel")


def test_search_reads_a_lone_surrogate_as_ask_does(engine):
    """JSON escapes allow a lone surrogate, which the encoders cannot take: `search` reads it
    as "?", as `ask` does, instead of failing with a TypeError from the tokenizer."""
    from rag import search, search_many

    assert search(engine, "Sahel \ud800 ?", k=3)
    assert [len(hits) for hits in search_many(engine, ["ok", "\udc80"], k=2)] == [2, 2]


@pytest.mark.parametrize("sources", [5, [["data/x.txt"]], [{}], b"data", [None]])
def test_malformed_sources_are_a_question_error_each_in_its_place(engine, sources):
    from rag import Request, ask_many

    with pytest.raises(QuestionError, match="sources must be"):
        ask(engine, "Sahel ?", sources=sources)
    bad, good = ask_many(engine, [Request("Sahel ?", sources=sources), Request("Macron ?")])
    assert isinstance(bad, QuestionError) and "sources must be" in str(bad)
    assert good == ask(engine, "Macron ?")


@pytest.mark.parametrize("previous, message", [
    (123, "previous question must be text"), (["a"], "previous question must be text"),
    ("x" * 5000, "previous question is too long")])
def test_a_previous_question_that_cannot_be_read_is_refused_not_dropped(engine, previous,
                                                                        message):
    """As the HTTP API refuses it: silently dropping it would answer another question."""
    with pytest.raises(QuestionError, match=message):
        ask(engine, "et au Sahel ?", previous=previous)


@pytest.mark.parametrize("previous", ["", "   ", "\u200b\u2060"])
def test_a_blank_previous_question_is_no_context(engine, previous):
    assert ask(engine, "et au Sahel ?", previous=previous).searched == "et au Sahel ?"


@pytest.mark.parametrize("question", ["\u2060", "\u00ad", "\u180e \ufe0f", "\U000e0041\u034f"])
def test_invisible_characters_alone_are_an_empty_question(engine, question):
    with pytest.raises(QuestionError, match="empty"):
        ask(engine, question)


def test_invisible_characters_inside_a_word_are_dropped():
    from rag import clean_question

    assert clean_question("Que dit Blinken du Sa\u00adhel\u2060 ?") == "Que dit Blinken du Sahel ?"
    assert clean_question("e\u0301t\u00e9") == "\u00e9t\u00e9"
