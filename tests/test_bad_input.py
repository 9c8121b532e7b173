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
    # A batch file holds one question per line, so line breaks inside a case are spaces here.
    lines = [q.replace("\n", " ").replace("\r", " ") for _, q, _ in CASES]
    payload = "\n".join(lines) + "\n"
    out = subprocess.run([sys.executable, "-m", "rag.cli", "ask", "--json", "--batch", "-"],
                         cwd=project, input=payload.encode("utf-8", "surrogatepass"),
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
