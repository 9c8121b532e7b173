"""Read a question with the spelling the transcripts give its words.

People type questions in lower case ("que dit blinken du sahel"), in capitals, without
accents, or with a slip of the keyboard ("Blinekn"), as into a search box. The multilingual
encoder is case- and accent-sensitive and the abstention rule reads names by their capitals,
so the same question typed four ways got four answers. The transcripts say how each word is
written: a word they capitalise inside a sentence ("Sahel", "Blinken", "OTAN") is a name, and
a question's lower-case spelling of it is read with its capitals; a French question's word
typed without accents is read with theirs; a word they never write, one slip of the keyboard
away from one they do, is read as that word. A question typed all in capitals is lowered
first.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .language import language
from .lexical import STOP_WORDS, as_read, fold

_WORD = re.compile(r"[^\W\d_]+")
# The first word of a sentence: after the text's start or . ! ? …, past spaces, quotes,
# brackets and dashes.
_FIRST = re.compile(r"(?:^|[.!?…])[\s\"'«»“”‘’()\[\]\-–—]*([^\W\d_]+)")
SLIP_MIN = 5  # shorter words are too close to too many others to tell a slip from a word


@dataclass(frozen=True)
class Spelling:
    """How the transcripts write their words.

    `forms`: the written form of each word they capitalise inside sentences more often than
    not, by its lower-case spelling. `accents`: for a question in their `language`, the
    accented form of a word typed without its accents. `words`: each word of `SLIP_MIN`
    letters or more, lower-cased without accents, with how often they use it and how they
    write it, to read a slip of the keyboard as the word meant.
    """

    forms: Mapping[str, str] = field(default_factory=dict)
    accents: Mapping[str, str] = field(default_factory=dict)
    language: str = ""
    words: Mapping[str, tuple[int, str]] = field(default_factory=dict)


def spelling_of(texts: Iterable[str], names: Iterable[str] = (), *,
                language: str = "") -> Spelling:
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
        found = _WORD.findall(as_read(name))
        written.update(found)
        every.update(w.lower() for w in found)
    best: dict[str, tuple[int, str]] = {}
    for word, count in written.items():
        lower = word.lower()
        if word != lower and count > max(written.get(lower, 0), best.get(lower, (0, ""))[0]):
            best[lower] = (count, word)
    forms = {lower: word for lower, (_, word) in best.items()}
    accented: dict[str, tuple[int, str]] = {}
    words: dict[str, tuple[int, str]] = {}
    for word, count in every.items():
        bare = fold(word)
        # Two letters or one may be either word ("a" or "à", "ou" or "où", "la" or "là").
        if bare != word and len(bare) > 2 and bare not in every \
                and count > accented.get(bare, (0, ""))[0]:
            accented[bare] = (count, word)
        if len(bare) >= SLIP_MIN and count > words.get(bare, (0, ""))[0]:
            words[bare] = (count, forms.get(word, word))
    accents = {bare: forms.get(word, word) for bare, (_, word) in accented.items()}
    return Spelling(forms, accents, language, words)


def respell(question: str, spelling: Spelling) -> str:
    """The question with the transcripts' capitals on the words it types in lower case, and
    on its first letter; asked in their language, their accents on the words it types
    without; their word for a slip of the keyboard; a question of three words or more typed
    all in capitals is lowered first."""
    question = as_read(question)  # as the encoders read it, and the transcripts were counted
    words = _WORD.findall(question)
    # Three words or more: one or two in capitals may be an acronym ("AUKUS", "NATO budget").
    shouting = len(words) >= 3 and not any(c.islower() for w in words for c in w)
    if shouting:
        question = question.lower()
    forms = spelling.forms
    accents = spelling.accents if spelling.accents and \
        language(question) == spelling.language else {}

    def written(m: re.Match) -> str:
        word = m[0]
        if word.islower():
            found = forms.get(word) or accents.get(word)
            if found:
                return found
        meant = slip(word, spelling)
        if meant is None:
            return word
        return meant[0].upper() + meant[1:] if word[0].isupper() else meant

    question = _WORD.sub(written, question)
    first = next((i for i, c in enumerate(question) if c.isalpha()), None)
    if first is not None:  # a sentence starts with a capital
        question = question[:first] + question[first].upper() + question[first + 1:]
    return question


def slip(word: str, spelling: Spelling) -> str | None:
    """The transcripts' word that `word` mistypes, or None: a word they never write, of
    `SLIP_MIN` letters or more, one slip of the keyboard from their most used word so. A slip
    is a letter left out or doubled, two letters swapped, or a key's neighbour struck instead
    (on a QWERTY or an AZERTY keyboard), and leaves the last letter: "Blinekn" is "Blinken",
    "Sahle" is "Sahel", but "laissant" is not "laissent" nor "américain" "américains", which
    are other forms of words."""
    bare = fold(word.lower())
    if len(bare) < SLIP_MIN or bare in spelling.words or bare in STOP_WORDS:
        return None
    found = sorted((spelling.words[c] for c in _one_slip(bare)
                    if c in spelling.words and c[-1] == bare[-1]), reverse=True)
    if not found or (len(found) > 1 and found[0][0] == found[1][0]):
        return None  # none, or two as likely
    return found[0][1]


def _neighbours(rows: tuple[str, ...]) -> dict[str, set[str]]:
    """The keys next to each key on a staggered keyboard: beside it, and the two above and
    below it."""
    near: dict[str, set[str]] = {}
    for r, row in enumerate(rows):
        for i, key in enumerate(row):
            keys = {row[j] for j in (i - 1, i + 1) if 0 <= j < len(row)}
            if r + 1 < len(rows):
                keys |= {rows[r + 1][j] for j in (i - 1, i) if 0 <= j < len(rows[r + 1])}
            if r > 0:
                keys |= {rows[r - 1][j] for j in (i, i + 1) if 0 <= j < len(rows[r - 1])}
            near.setdefault(key, set()).update(keys)
    return near


_NEAR: dict[str, set[str]] = {}
for _layout in (("qwertyuiop", "asdfghjkl", "zxcvbnm"), ("azertyuiop", "qsdfghjklm", "wxcvbn")):
    for _key, _keys in _neighbours(_layout).items():
        _NEAR.setdefault(_key, set()).update(_keys)


def _one_slip(word: str) -> set[str]:
    """Every word one slip from `word` could have been meant as: with the letter a slip
    doubled or struck beside it taken out, a letter put back, two letters swapped back, or a
    key put back by one of its neighbours."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    out = {a + b[1:] for a, b in splits if b}
    out |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    out |= {a + c + b[1:] for a, b in splits if b for c in _NEAR.get(b[0], ())}
    out |= {a + c + b for a, b in splits for c in _LETTERS}
    out.discard(word)
    return out


_LETTERS = "abcdefghijklmnopqrstuvwxyz"
