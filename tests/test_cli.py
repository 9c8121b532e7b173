"""The `rag` command as a user runs it: output, JSON lines, exit codes and messages."""

import json
import subprocess
import sys

import pytest


def rag(*args, cwd, stdin=None):
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=300)


def test_ask_json(project):
    out = rag("ask", "--json", "Qu'a dit Blinken sur la coopération au Sahel ?", cwd=project)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    text = (project / "data" / "blinken-france2-2021-10.txt").read_text(encoding="utf-8")
    assert not data["abstained"] and data["citations"]
    for c in data["citations"]:
        assert text[c["start"]:c["end"]] == c["text"]


def test_ask_readable(project):
    out = rag("ask", "What did Blinken say about communication?", cwd=project)
    assert out.returncode == 0, out.stderr
    assert "[1]" in out.stdout and "interview with France 2, 2021-10, answer" in out.stdout


def test_a_weak_match_between_two_answers_says_so(project):
    """Where two answers are all but tied (tests/test_answer.py), the reader is told that the
    quotes come from different answers; a clear answer gets its confidence alone."""
    out = rag("ask", "Le nombre de soldats suffit-il à juger de l'implication américaine ?",
              cwd=project)
    assert out.returncode == 0, out.stderr
    assert "a weak match, the quotes come from different answers" in out.stdout
    out = rag("ask", "Que dit Blinken du Sahel ?", cwd=project)
    assert out.returncode == 0, out.stderr
    assert "\nconfidence 0.9" in out.stdout and "weak match" not in out.stdout


def test_batch_keeps_order_and_reports_bad_lines(project):
    lines = "Sahel ?\n\n" + "x" * 10_000 + "\nWho won the 2018 World Cup?\n"
    out = rag("ask", "--json", "--batch", "-", cwd=project, stdin=lines)
    assert out.returncode == 0, out.stderr
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(records) == 3
    assert records[0]["question"] == "Sahel ?" and not records[0]["abstained"]
    assert "too long" in records[1]["error"]
    assert records[2]["abstained"] is True


def test_batch_file_answers_as_single_questions_do(project, engine):
    """A file is answered in groups; every line still gets what `rag ask` would give it."""
    from rag import ask

    from .conftest import GOLD

    questions = [json.loads(line)["question"] for line in GOLD.read_text().splitlines()][:40]
    questions.insert(33, "x" * 2_000)
    path = project / "questions.txt"
    path.write_text("\n".join(questions) + "\n\n", encoding="utf-8")
    out = rag("ask", "--json", "--batch", str(path), cwd=project)
    assert out.returncode == 0, out.stderr
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["question"] for r in records] == [q[:200] for q in questions]
    assert "too long" in records[33]["error"]
    for question, record in zip(questions[30:36], records[30:36], strict=True):
        if "error" not in record:
            assert record == ask(engine, question).to_dict()


@pytest.mark.parametrize("question, message", [
    ("", "empty"), ("  \t ", "empty"), ("x" * 10_000, "too long"),
])
def test_bad_question_exits_2(project, question, message):
    out = rag("ask", "--json", question, cwd=project)
    assert out.returncode == 2 and message in out.stderr and out.stdout == ""
    assert "Traceback" not in out.stderr


def test_missing_index_exits_3(project, tmp_path):
    out = rag("ask", "--index", str(tmp_path / "none"), "Sahel", cwd=project)
    assert out.returncode == 3 and "rag build" in out.stderr and "Traceback" not in out.stderr


def test_corrupt_index_exits_3(scratch):
    from rag.index import read_manifest

    build_dir, _ = read_manifest(scratch / "index")
    (build_dir / "corpus.json").write_text("[")
    out = rag("ask", "Sahel", cwd=scratch)
    assert out.returncode == 3 and "damaged" in out.stderr and "Traceback" not in out.stderr


def test_stale_index_exits_3_with_a_message(scratch):
    path = scratch / "data" / "blinken-france2-2021-10.txt"
    path.write_text(path.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    out = rag("ask", "Sahel", cwd=scratch)
    assert out.returncode == 3 and "changed" in out.stderr


def test_an_index_is_read_with_the_settings_it_was_built_with(scratch):
    """Flags naming no setting open an index as it was built; flags naming other settings
    find it stale, and a rebuild without flags keeps its settings."""
    built = rag("build", "--no-multilingual", cwd=scratch)
    assert built.returncode == 0, built.stderr
    out = rag("ask", "--json", "Que fait-on au Sahel ?", cwd=scratch)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["citations"][0]["answer"] == 3
    out = rag("ask", "--backend", "onnx", "Sahel", cwd=scratch)
    assert out.returncode == 3 and "'multilingual': False" in out.stderr, out.stderr
    path = scratch / "data" / "blinken-france2-2021-10.txt"
    path.write_text(path.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    out = rag("ask", "--rebuild", "--json", "Sahel", cwd=scratch)
    assert out.returncode == 0 and "rebuilding the index" in out.stderr, out.stderr
    current = (scratch / "index" / "CURRENT").read_text(encoding="utf-8").strip()
    manifest = json.loads((scratch / "index" / current / "manifest.json").read_text())
    assert manifest["settings"]["multilingual"] is False


def test_malformed_transcript_exits_4_naming_the_line(tmp_path):
    (tmp_path / "bad.txt").write_text("date 2021-10 X : Q ?\n\n\"never closed\n", encoding="utf-8")
    out = rag("build", "bad.txt", cwd=tmp_path)
    assert out.returncode == 4 and "bad.txt:3" in out.stderr and "Traceback" not in out.stderr


def test_a_model_that_cannot_be_loaded_is_one_line_not_a_traceback(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text(
        'date 2021-10 X : Q ?\n\nA : "Une réponse assez longue pour être citée."\n',
        encoding="utf-8")
    (tmp_path / "empty-model").mkdir()
    for args, message in ((["--model", "no-such/model"], "HF_HUB_OFFLINE is set"),
                          (["--model", str(tmp_path / "empty-model"), "--backend", "torch"],
                           "cannot load the model")):
        out = rag("build", *args, cwd=tmp_path)
        assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
        errors = [line for line in out.stderr.splitlines() if line.startswith("rag: error:")]
        assert len(errors) == 1 and message in errors[0], out.stderr
        assert not (tmp_path / "index").exists()


def test_load_embedder_names_the_model_it_cannot_load():
    from rag import ModelError, load_embedder

    with pytest.raises(ModelError, match="cannot load the model 'no-such/model'"):
        load_embedder("no-such/model")


def test_the_missing_index_message_gives_its_hint_once(project, tmp_path):
    out = rag("ask", "--index", str(tmp_path / "none"), "Sahel", cwd=project)
    assert out.stderr == f"rag: error: no index in {tmp_path / 'none'} " \
                         "(run `rag build`, or `rag ask --rebuild`)\n"


_K = "-k must be a whole number from 1 to 20"
_ALONE = "--batch reads its questions from FILE: give no question and no --previous with it"


@pytest.mark.parametrize("args, message", [
    (["-k", "0"], _K), (["-k", "21"], _K),
    (["a question"], _ALONE), (["--previous", "La France ?"], _ALONE),
])
@pytest.mark.parametrize("batch", ["file", "-"])
def test_a_batch_with_bad_usage_exits_2_before_anything_loads(tmp_path, args, message, batch):
    (tmp_path / "q.txt").write_text("Sahel ?\n", encoding="utf-8")
    out = rag("ask", "--json", "--batch", "q.txt" if batch == "file" else "-", *args,
              "--index", str(tmp_path / "no-index"), cwd=tmp_path, stdin="Sahel ?\n")
    # Exit 2, not 3: the usage is refused before the (missing) index is looked for.
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == f"rag: error: {message}\n"


def test_a_batch_file_that_is_not_utf8_exits_6_naming_its_line(tmp_path):
    (tmp_path / "q.txt").write_bytes(b"Sahel ?\ncaf\xe9 ?\n")
    out = rag("ask", "--json", "--batch", "q.txt", "--index", str(tmp_path / "no-index"),
              cwd=tmp_path)
    assert out.returncode == 6 and out.stdout == ""
    assert out.stderr == "rag: error: q.txt:2: not UTF-8 text\n"


def test_standard_input_that_is_not_utf8_stops_at_its_line(project):
    out = subprocess.run([sys.executable, "-m", "rag.cli", "ask", "--json", "--batch", "-"],
                         cwd=project, input=b"Sahel ?\ncaf\xe9 ?\nAUKUS ?\n",
                         capture_output=True, timeout=300)
    assert out.returncode == 6
    assert out.stderr.decode() == "rag: error: standard input:2: not UTF-8 text\n"
    records = [json.loads(line) for line in out.stdout.decode().splitlines()]
    assert [r["question"] for r in records] == ["Sahel ?"]


def test_a_file_named_as_the_index_folder_exits_5_saying_so(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text(
        'date 2021-10 X : Q ?\n\nA : "Une réponse assez longue pour être citée."\n',
        encoding="utf-8")
    (tmp_path / "afile").write_text("not an index")
    out = rag("build", "--index", "afile", cwd=tmp_path)
    assert out.returncode == 5
    assert out.stderr == "rag: error: cannot write the index folder afile: it is a file, " \
                         "not a folder\n"


def test_a_previous_question_too_long_exits_2_before_anything_loads(tmp_path):
    """Refused, as the HTTP API refuses it, rather than dropped without a word."""
    out = rag("ask", "--previous", "x" * 1_001, "et au Sahel ?", "--index",
              str(tmp_path / "no-index"), cwd=tmp_path)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == ("rag: error: the previous question is too long (1001 characters; "
                          "the limit is 1000)\n")
