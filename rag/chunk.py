"""Cut answer text into passage spans of one or a few sentences, never across two answers.

Short passages keep citations focused (the sentence that answers, not the whole answer);
very short sentences are joined to a neighbour, and very long ones are cut at clause marks.
"""

from __future__ import annotations

import re

from .lexical import nfc

# A sentence ends at . ! ? … followed by space and something that starts a sentence.
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"»”)]?\s+(?=[\"«“(]?[A-ZÀ-ÖØ-Þ0-9])")
_CLAUSE = re.compile(r"(?<=[:;])\s+|(?<=,)\s+(?=(?:mais|et puis|but|and then)\b)")
# Any comma, semicolon or colon before a space: where a passage's clauses meet.
_CLAUSE_MARK = re.compile(r"(?<=[,;:])\s+")


def sentence_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Split text[start:end] into sentence spans (absolute offsets, trimmed of spaces)."""
    spans = []
    cursor = start
    for m in _SENTENCE_END.finditer(text, start, end):
        spans.append((cursor, m.start()))
        cursor = m.end()
    spans.append((cursor, end))
    return [_trim(text, a, b) for a, b in spans if text[a:b].strip()]


def chunk_span(text: str, start: int, end: int, *, max_chars: int = 320,
               min_chars: int = 60) -> list[tuple[int, int]]:
    """Passage spans covering text[start:end]: sentences, long ones cut, short ones joined."""
    pieces: list[tuple[int, int]] = []
    for a, b in sentence_spans(text, start, end):
        pieces.extend(_cut_long(text, a, b, max_chars))
    merged: list[tuple[int, int]] = []
    for a, b in pieces:
        if merged and (_size(text, a, b) < min_chars
                       or _size(text, *merged[-1]) < min_chars) \
                and _size(text, merged[-1][0], b) <= max_chars:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged


def clause_spans(text: str, start: int, end: int, *, min_words: int = 3) -> list[tuple[int, int]]:
    """The clauses of the passage text[start:end] that hold at least `min_words` words, or
    none when it has only one.

    A long sentence answers several things at once, and its vector blurs them; a question
    about one of them can be closer to that clause alone than to the whole passage.
    """
    spans, cursor = [], start
    for m in _CLAUSE_MARK.finditer(text, start, end):
        spans.append(_trim(text, cursor, m.start() - 1))  # without the mark
        cursor = m.end()
    if not spans:
        return []
    spans.append(_trim(text, cursor, end))
    return [(a, b) for a, b in spans if len(text[a:b].split()) >= min_words]


def _size(text: str, a: int, b: int) -> int:
    """Characters in text[a:b] as read, accents composed and each run of spaces one: a
    transcript saved decomposed, or with doubled spaces, is cut into the same passages as the
    same words written plainly."""
    return len(" ".join(nfc(text[a:b]).split()))


def _cut_long(text: str, a: int, b: int, max_chars: int) -> list[tuple[int, int]]:
    if _size(text, a, b) <= max_chars:
        return [(a, b)]
    cuts = [m for m in _CLAUSE.finditer(text, a, b)]
    out = []
    cursor = a
    for m in cuts:
        if _size(text, cursor, m.start()) >= max_chars // 3 \
                and _size(text, m.end(), b) >= max_chars // 3:
            out.append(_trim(text, cursor, m.start()))
            cursor = m.end()
    out.append(_trim(text, cursor, b))
    return out


def _trim(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b
