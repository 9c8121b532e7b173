"""Read a question with the capitals the transcripts give its words.

People type questions in lower case ("que dit blinken du sahel"), or in capitals, as into a
search box. The multilingual encoder is case-sensitive and the abstention rule reads names by
their capitals, so the same question typed three ways got three different answers. The
transcripts say how each word is written: a word they capitalise inside a sentence
("Sahel", "Blinken", "OTAN") is a name, and a question's lower-case spelling of it is read
with its capitals; a question typed all in capitals is read in lower case first.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .language import language
from .lexical import as_read, fold

_WORD = re.compile(r"[^\W\d_]+")
# The first word of a sentence: after the text's start or . ! ? …, past spaces, quotes,
# brackets and dashes.
_FIRST = re.compile(r"(?:^|[.!?…])[\s\"'«»“”‘’()\[\]\-–—]*([^\W\d_]+)")


@dataclass(frozen=True)
class Casing:
    """How the transcripts write their words: the written form of each word they capitalise
    inside sentences more often than not, by its lower-case spelling; and, for a question in
    their language, the accented form of each word typed without its accents."""

    forms: Mapping[str, str] = field(default_factory=dict)
    accents: Mapping[str, str] = field(default_factory=dict)
    language: str = ""


def casing_of(texts: Iterable[str], names: Iterable[str] = (), *, language: str = "") -> Casing:
    """Count how the texts write each word, leaving out the first word of each sentence,
    whose capital says nothing; every word of `names` (the speakers') counts. A word's accents
    are taken from all its occurrences, when its spelling without them is no word of theirs
    ("securite" is "sécurité"; "a" stays "a", since they write both "a" and "à"), for questions
    in `language`, the texts' ('fr' or 'en'; none by default)."""
    written: Counter[str] = Counter()
    every: Counter[str] = Counter()
    for text in texts:
        text = as_read(text)
        found = _WORD.findall(text)
        written.update(found)
        every.update(w.lower() for w in found)
        written.subtract(_FIRST.findall(text))
    for name in names:
        written.update(_WORD.findall(as_read(name)))
    best: dict[str, tuple[int, str]] = {}
    for word, count in written.items():
        lower = word.lower()
        if word != lower and count > max(written.get(lower, 0), best.get(lower, (0, ""))[0]):
            best[lower] = (count, word)
    forms = {lower: word for lower, (_, word) in best.items()}
    accented: dict[str, tuple[int, str]] = {}
    for word, count in every.items():
        bare = fold(word)
        # Two letters or one may be either word ("a" or "à", "ou" or "où", "la" or "là").
        if bare != word and len(bare) > 2 and bare not in every \
                and count > accented.get(bare, (0, ""))[0]:
            accented[bare] = (count, word)
    accents = {bare: forms.get(word, word) for bare, (_, word) in accented.items()}
    return Casing(forms, accents, language)


def recase(question: str, casing: Casing) -> str:
    """The question with the transcripts' capitals on the words it types in lower case, and
    on its first letter, and, asked in their language, their accents on the words it types
    without; a question of three words or more typed all in capitals is lowered first."""
    question = as_read(question)  # the words as the transcripts' were counted
    words = _WORD.findall(question)
    # Three words or more: one or two in capitals may be an acronym ("AUKUS", "NATO budget").
    shouting = len(words) >= 3 and not any(c.islower() for w in words for c in w)
    if shouting:
        question = question.lower()
    forms = casing.forms
    accents = casing.accents if casing.accents and language(question) == casing.language \
        else {}

    def written(m: re.Match) -> str:
        word = m[0]
        if not word.islower():
            return word
        return forms.get(word) or accents.get(word) or word

    if forms or accents:
        question = _WORD.sub(written, question)
    first = next((i for i, c in enumerate(question) if c.isalpha()), None)
    if first is not None:  # a sentence starts with a capital
        question = question[:first] + question[first].upper() + question[first + 1:]
    return question
