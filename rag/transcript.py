"""Parse an interview transcript into turns, keeping every piece's offsets into the file's text.

Format: the first line is `date YYYY-MM OUTLET : FIRST QUESTION`; after it, interviewer
questions are unquoted lines and the interviewee's answers are quoted blocks, the first of them
(or any) prefixed `Name : "...`. Offsets are Python `str` indices into the UTF-8-decoded file.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import TranscriptFormatError

_META = re.compile(r"^\s*date\s+(?P<date>\S+)\s+(?P<outlet>.+?)\s+:\s+(?P<question>\S.*?)\s*$")
_DATE = re.compile(r"\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?")
_SPEAKER = re.compile(r"^\s*(?P<speaker>[^\s\"«“:][^\"«“:]{0,80}?)\s*:\s*(?=[\"«“])")
_OPEN = '"«“'
# A straight quote is often typed for a curly one, or the other way: either closes the other.
_CLOSE = {'"': ('"', "”"), "«": ("»",), "“": ("”", '"')}
_TRAILER = re.compile(r"[\s.,;!?…]*$")


@dataclass(frozen=True)
class Turn:
    """One interviewer question and the interviewee's answer to it."""

    number: int  # answer number, from 1
    question: str
    question_start: int
    question_end: int
    speaker: str
    start: int  # span of the answer's text, inside its quotes
    end: int


@dataclass(frozen=True)
class Transcript:
    source: str  # path as cited (relative to the project root where possible)
    text: str
    sha256: str
    date: str | None
    outlet: str | None
    turns: tuple[Turn, ...]


def read_transcript(path: str | Path, *, source: str | None = None) -> Transcript:
    """Read and parse a transcript file; `source` is the name citations give it."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TranscriptFormatError(f"cannot read the transcript: {exc.strerror}",
                                    source=source or str(path)) from None
    return parse_transcript(raw, source=source or str(path))


def parse_transcript(raw: bytes | str, *, source: str = "<transcript>",
                     default_speaker: str = "Interviewee") -> Transcript:
    """Parse transcript text (bytes are decoded as UTF-8) into turns.

    Raises TranscriptFormatError naming the offending line when the text does not follow the format.
    """
    if isinstance(raw, bytes):
        digest = hashlib.sha256(raw).hexdigest()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise TranscriptFormatError(
                f"not UTF-8 text (byte {exc.start})", line, source) from None
    elif isinstance(raw, str):
        text = raw
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    else:
        raise TranscriptFormatError(f"a transcript is text or bytes, not {type(raw).__name__}",
                                    source=source)
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise TranscriptFormatError("contains a NUL character", line, source)

    lines = _lines(text)
    if not any(body.strip() for _, _, body in lines):
        raise TranscriptFormatError("the transcript is empty", None, source)

    turns: list[Turn] = []
    date = outlet = None
    speaker = None
    pending: tuple[str, int, int, int] | None = None  # question, start, end, line number
    i = 0
    first = True
    while i < len(lines):
        lineno, offset, body = lines[i]
        stripped = body.strip().lstrip("\ufeff")
        if not stripped:
            i += 1
            continue
        if first:
            first = False
            m = _META.match(body.lstrip("\ufeff"))
            if not m:
                raise TranscriptFormatError(
                    "the first line must read `date YYYY-MM OUTLET : FIRST QUESTION`",
                    lineno, source)
            if not _DATE.fullmatch(m["date"]):
                raise TranscriptFormatError(
                    f"the date must read YYYY-MM (or YYYY, or YYYY-MM-DD), not {m['date']!r}",
                    lineno, source)
            shift = offset + len(body) - len(body.lstrip("\ufeff"))
            date, outlet = m["date"], m["outlet"].strip()
            pending = (m["question"], shift + m.start("question"), shift + m.end("question"),
                       lineno)
            i += 1
            continue
        opener = _opening(body)
        if opener is None:
            header = _META.match(body)
            if header and _DATE.fullmatch(header["date"]):  # two files run together
                raise TranscriptFormatError(
                    "a second `date` header: a file holds one interview; put this one in a "
                    "file of its own", lineno, source)
            if pending is not None:
                raise TranscriptFormatError(
                    f"expected a quoted answer to the question on line {pending[3]}, "
                    "found another unquoted line", lineno, source)
            q_start = offset + len(body) - len(body.lstrip())
            q_end = offset + len(body.rstrip())
            pending = (text[q_start:q_end], q_start, q_end, lineno)
            i += 1
            continue
        if pending is None:
            raise TranscriptFormatError(
                "a quoted answer with no interviewer question before it", lineno, source)
        name, quote_at = opener
        speaker = name or speaker
        close = _CLOSE[body[quote_at]]
        start = offset + quote_at + 1
        # The answer ends at the last closing quote of the first line that ends with one.
        j = i
        while True:
            jl, joff, jbody = lines[j]
            tail = jbody[quote_at + 1:] if j == i else jbody
            base = joff + (quote_at + 1 if j == i else 0)
            trimmed = _TRAILER.sub("", tail)
            if trimmed.endswith(close) and not (j == i and len(trimmed) == 0):
                end = base + len(trimmed) - 1
                break
            j += 1
            if j >= len(lines):
                raise TranscriptFormatError("this quoted answer is never closed", lineno, source)
        # Trim spaces inside the quotes so spans start and end on text.
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end <= start:
            raise TranscriptFormatError("empty answer", lineno, source)
        question, q_start, q_end, _ = pending
        turns.append(Turn(len(turns) + 1, question, q_start, q_end,
                          speaker or default_speaker, start, end))
        pending = None
        i = j + 1
    if pending is not None:
        raise TranscriptFormatError(
            "the last question has no quoted answer after it", pending[3], source)
    if not turns:
        raise TranscriptFormatError("no answers found", None, source)
    return Transcript(source, text, digest, date, outlet, tuple(turns))


def _lines(text: str) -> list[tuple[int, int, str]]:
    """(line number, offset, line without its line break) for every line."""
    out = []
    offset = 0
    for n, line in enumerate(text.splitlines(keepends=True), start=1):
        body = line.rstrip("\r\n")
        out.append((n, offset, body))
        offset += len(line)
    return out


def _opening(body: str) -> tuple[str | None, int] | None:
    """If the line opens a quoted answer, (speaker name or None, index of the quote)."""
    stripped = body.lstrip("\ufeff")
    lead = len(body) - len(stripped.lstrip())
    if lead < len(body) and body[lead] in _OPEN:
        return None, lead
    m = _SPEAKER.match(body)
    if m:
        return m["speaker"].strip(), m.end()
    return None
