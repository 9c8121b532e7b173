"""Arbitrary input never breaks the engine or the parser, and builds cannot corrupt the index."""

import fcntl
import re
import signal
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag import (
    IndexWriteError,
    QuestionError,
    TranscriptFormatError,
    ask,
    build,
    clean_question,
    parse_transcript,
)
from rag.index import load_index
from rag.server import VISIBLE

from .conftest import TRANSCRIPT

SLOW_OK = settings(max_examples=60, deadline=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture])


@SLOW_OK
@given(st.text(max_size=300))
def test_ask_never_raises_and_citations_stay_exact(engine, question):
    try:
        answer = ask(engine, question)
    except QuestionError:
        # only a question that is empty once cleaned, or too long, is refused
        with pytest.raises(QuestionError):
            clean_question(question)
        return
    texts = engine.index.corpus.texts
    for c in answer.citations + answer.closest:
        assert texts[c.source][c.start:c.end] == c.text


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=20))
def test_the_schema_pattern_says_which_questions_are_empty(question):
    """`POST /api/ask` tells clients its rule for a question with something in it; the rule
    it applies is `clean_question`'s, and the two agree."""
    try:
        clean_question(question)
        kept = True
    except QuestionError:
        kept = False
    assert kept == bool(re.search(VISIBLE, question))


_LINE = st.one_of(
    st.just(""), st.just("date 2021-10 France 2 : Question ?"), st.just('"Réponse."'),
    st.just('Nom : "Réponse"'), st.just("Question ?"), st.just('"ouverte'),
    st.just('fermée".'), st.text(max_size=40))


@settings(max_examples=400, deadline=None)
@given(st.lists(_LINE, max_size=12), st.sampled_from(["\n", "\r\n", "\n\n"]))
def test_parser_fuzz_only_raises_its_own_error(lines, newline):
    raw = newline.join(lines).encode("utf-8", "surrogatepass")
    try:
        transcript = parse_transcript(raw)
    except TranscriptFormatError:
        return
    for turn in transcript.turns:
        assert 0 <= turn.start < turn.end <= len(transcript.text)
        assert transcript.text[turn.question_start:turn.question_end] == turn.question


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_parser_fuzz_on_bytes(raw):
    try:
        parse_transcript(raw)
    except TranscriptFormatError:
        pass


def test_parser_accepts_the_bundled_file_with_windows_line_ends():
    raw = TRANSCRIPT.read_bytes().replace(b"\n", b"\r\n")
    transcript = parse_transcript(raw)
    assert len(transcript.turns) == 5
    for turn in transcript.turns:
        assert "\r" not in transcript.text[turn.start:turn.end]


def test_second_build_is_refused_while_one_runs(scratch, embedders):
    with open(scratch / "index" / ".lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(IndexWriteError, match="another build"):
            build(scratch / "index", root=scratch, embedders=dict(embedders))
    load_index(scratch / "index", root=scratch)


@pytest.mark.parametrize("delay", [3.0, 8.0])
def test_killed_build_leaves_the_previous_index_loadable(scratch, delay):
    before = load_index(scratch / "index", root=scratch).manifest["files"]
    proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "build"], cwd=scratch,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    index = load_index(scratch / "index", root=scratch)
    assert index.corpus.passages
    if proc.returncode == -signal.SIGKILL:
        # killed before it switched: the old build is still the current one
        current = index.manifest["files"]
        assert current == before or set(current) == set(before)


@pytest.fixture()
def small_disk(tmp_path, project):
    """A folder on a file system with room for the index's corpus and not its vectors."""
    import os

    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    build_dir = next((project / "index").glob("build-*"))
    pages = -(-(build_dir / "corpus.json").stat().st_size // 4096) + 1
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={4 * pages}k", "tmpfs",
                              str(disk)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a small file system: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_a_full_disk_fails_the_build_in_one_line_and_leaves_nothing(scratch, small_disk):
    out = subprocess.run([sys.executable, "-m", "rag.cli", "build", "--index",
                          str(small_disk / "idx")], cwd=scratch, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 5 and "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if "rag: error:" in line]
    assert len(errors) == 1 and errors[0].endswith(
        f"rag: error: cannot write the index in {small_disk / 'idx'}: the disk is full")
    assert not (small_disk / "idx").exists()  # a first build leaves not even its folder
