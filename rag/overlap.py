"""What a question repeats of a document word for word: its words, names, numbers, phrases.

BM25 cuts words to six letters and the encoders read meaning, so two paragraphs of the same
article often score alike. A question written by someone who read the text ("Comment
s'appelait le frère de Carlo Gesualdo ?") also repeats its exact words, its names, its
numbers and short runs of its wording, and the paragraph that repeats more of them is most
often the one asked about. Each signal is a share in [0, 1], on a fixed scale like the others.
Only the candidates' documents are read, so the cost follows the candidates, not the corpus.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .lexical import ELISION, STOP_WORDS, WORD, fold, names, nfc

SIGNALS = ("words", "names", "numbers", "phrase")
PHRASE = 5  # the longest run of the question's words looked for, in words
_STOPS = frozenset(fold(w) for w in STOP_WORDS)  # the question's words are folded too


@dataclass(frozen=True)
class QueryTerms:
    """The parts of a question that a document may repeat, folded as `spelling` folds text."""

    words: tuple[str, ...]
    weights: np.ndarray  # each word's idf: a rare word repeated says more than a common one
    names: tuple[str, ...]
    numbers: tuple[str, ...]
    tokens: tuple[str, ...]  # every word in order, stop words too, for the runs of words


def spelling(text: str) -> str:
    """Lower-cased, accent-folded words between single spaces, with a space at each end, so
    that `f" {word} " in spelling(text)` asks for a whole word and a run of words alike."""
    words = WORD.findall(ELISION.sub(" ", nfc(text).lower()))
    return " " + " ".join(fold(w) for w in words) + " "


def query_terms(query: str, idf: Callable[[str], float],
                ignore: frozenset[str] = frozenset()) -> QueryTerms:
    """What to look for of `query`; `idf` weighs a folded content word, `ignore` drops words
    that select nothing (the speaker's name, which every passage of an interview shares)."""
    tokens = spelling(query).split()
    kept = [w for w in dict.fromkeys(tokens)
            if len(w) > 2 and w not in _STOPS and not w.isdigit() and w not in ignore]
    named = [spelling(w).strip() for w in names(query)]
    named = [w for w in named if w and w not in ignore]
    numbers = [w for w in dict.fromkeys(tokens) if w.isdigit()]
    return QueryTerms(tuple(kept), np.array([idf(w) for w in kept], np.float32),
                      tuple(dict.fromkeys(named)), tuple(numbers), tuple(tokens))


def overlap(terms: QueryTerms, texts: list[str]) -> np.ndarray:
    """For each text (as `spelling` gives it), one row of the four shares, in SIGNALS order:
    the idf-weighted share of the question's content words it contains, the share of its
    names and of its numbers, and its longest run of the question's words over PHRASE."""
    out = np.zeros((len(texts), len(SIGNALS)), np.float32)
    weights = terms.weights.tolist()
    total = sum(weights)
    tokens = terms.tokens
    needles = {t: f" {t} " for t in tokens}
    # a pair of stop words ("de la") is in nearly every text and tells nothing
    pairs = [(a, b) for a, b in zip(tokens, tokens[1:], strict=False)
             if a not in _STOPS or b not in _STOPS]
    for row, text in enumerate(texts):
        has = {t for t, needle in needles.items() if needle in text}
        if not has:
            continue
        if total > 0:
            out[row, 0] = sum(w for t, w in zip(terms.words, weights, strict=True)
                              if t in has) / total
        if terms.names:
            out[row, 1] = sum(n in has or " " in n and f" {n} " in text
                              for n in terms.names) / len(terms.names)
        if terms.numbers:
            out[row, 2] = sum(n in has for n in terms.numbers) / len(terms.numbers)
        present = {(a, b) for a, b in pairs if a in has and b in has and f" {a} {b} " in text}
        if present:
            out[row, 3] = _longest_run(tokens, present, text) / PHRASE
    return out


def _longest_run(tokens: tuple[str, ...], present: set[tuple[str, str]], text: str) -> int:
    """The longest run of `tokens` (at most PHRASE) found in `text` and holding one of the
    `present` pairs: a longer run lies within a chain of such pairs (a pair of stop words may
    join two), so only those chains are read."""
    pairs = list(zip(tokens, tokens[1:], strict=False))
    held = [p in present or (p[0] in _STOPS and p[1] in _STOPS) for p in pairs]
    chains, i = [], 0  # (first token, tokens covered) of each chain of held pairs
    while i < len(held):
        if held[i]:
            j = i
            while j + 1 < len(held) and held[j + 1]:
                j += 1
            chains.append((i, j - i + 2))
            i = j + 1
        else:
            i += 1
    for n in range(min(PHRASE, max(length for _, length in chains)), 2, -1):
        for first, length in chains:
            for a in range(first, first + length - n + 1):
                if any(p in present for p in pairs[a:a + n - 1]) \
                        and f" {' '.join(tokens[a:a + n])} " in text:
                    return n
    return 2
