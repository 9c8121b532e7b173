"""How much of a question the transcripts speak of, in either language.

An off-topic question close to an interview's themes ("Did Blinken mention trade tariffs
between the EU and the US?") shares names with it, so its best passage can score like an
answer. What gives it away is a word the transcripts neither use nor translate. Each content
word of the question is compared, under the multilingual encoder, with the corpus's own words:
"disengaging" lands near "désengagent", "tariffs" near nothing. The mean of each word's best
cosine, the question's term coverage, feeds the abstention rule. A word spelt as in the corpus
(accents aside) counts 1 and needs no vector.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from .corpus import Corpus
from .embed import Embedder
from .lexical import ELISION, STOP_WORDS, WORD, fold, nfc

# Words with vectors: the corpus's most widespread ones. A corpus of a million passages has
# far more distinct words; past this many, a question's word is matched against these only
# (a word spelt as in the corpus still counts 1), which bounds memory and the cost per word.
VOCABULARY_LIMIT = 20_000
CACHE_LIMIT = 10_000  # words of past questions whose vectors are kept: at most 20 MiB


def content_words(text: str) -> list[str]:
    """Lower-cased words of three letters or more, elisions split, stop words and numbers out."""
    text = ELISION.sub(" ", nfc(text).lower())
    return [w for w in WORD.findall(text)
            if len(w) > 2 and w not in STOP_WORDS and not w.isdigit()]


def corpus_words(corpus: Corpus, limit: int = VOCABULARY_LIMIT) -> tuple[frozenset[str],
                                                                        list[str]]:
    """Every content word of the passages and interviewer questions, and the `limit` found
    in the most passages (ties by spelling), which get vectors."""
    counts: Counter[str] = Counter()
    for p in corpus.passages:
        counts.update(set(content_words(p.text)))
    for d in corpus.documents:
        counts.update(set(content_words(d.question or "")))
    ranked = sorted(counts, key=lambda w: (-counts[w], w))
    return frozenset(counts), ranked[:limit]


def words_digest(words: list[str]) -> str:
    """What the index records of the words its vectors stand for."""
    return hashlib.sha256("\n".join(words).encode("utf-8")).hexdigest()


@dataclass
class Coverage:
    """The corpus side of term coverage, and the vectors of words questions have used.

    `known`: every word of the corpus; `vectors`: unit rows for the words `corpus_words` ranks
    first. Empty when the index keeps none (built without the multilingual encoder): then a
    word the corpus does not spell may still be a translation of one, so coverage cannot tell
    and says 1, which leaves the abstention rule to the other signals.
    `ignore`: words that select nothing, such as the speaker's name. `among`: which rows of
    `vectors` count (a mask), when a question may cite only some transcripts; None for all.
    """

    known: frozenset[str]
    vectors: np.ndarray
    embedder: Embedder | None = None
    ignore: frozenset[str] = frozenset()
    among: np.ndarray | None = None
    _cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _spellings: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self):
        # A word is the corpus's whatever its accents: "États-Unis" asks about "Etats-Unis".
        self._spellings = frozenset(fold(w) for w in self.known)

    def spelt(self, word: str) -> bool:
        """Whether the corpus has this word, accents aside."""
        return word in self.known or fold(word) in self._spellings

    def words(self, query: str) -> list[str]:
        return [w for w in content_words(query) if w not in self.ignore]

    def unknown(self, queries: Iterable[str]) -> list[str]:
        """The words of these questions that are no word of the corpus, once each."""
        return sorted({w for q in queries for w in self.words(q) if not self.spelt(w)})

    def missing(self, queries: Iterable[str]) -> list[str]:
        """The words of these questions that need a vector not yet computed."""
        if self.embedder is None or not len(self.vectors):
            return []
        return [w for w in self.unknown(queries) if w not in self._cache]

    def store(self, words: list[str], vectors: np.ndarray) -> None:
        with self._lock:
            if len(self._cache) + len(words) > CACHE_LIMIT:
                self._cache.clear()
            self._cache.update(zip(words, np.asarray(vectors, np.float32), strict=True))

    def score(self, query: str) -> float:
        """Mean over the question's content words of the best cosine with a corpus word
        (1 for a question with none: nothing in it is foreign to the corpus; 1 without word
        vectors: nothing can be told)."""
        words = self.words(query)
        if not words:
            return 1.0
        unknown = [w for w in words if not self.spelt(w)]
        if not unknown or self.embedder is None or not len(self.vectors):
            return 1.0
        with self._lock:
            found = {w: self._cache.get(w) for w in unknown}
        todo = [w for w, vector in found.items() if vector is None]
        if todo:
            fresh = np.asarray(self.embedder.embed_batch(todo), np.float32)
            found.update(zip(todo, fresh, strict=True))
            self.store(todo, fresh)
        rows = np.stack([found[w] for w in unknown])
        sims = rows @ self.vectors.T
        if self.among is not None:
            sims = sims[:, self.among]
        best = np.clip(sims.max(axis=1), 0.0, 1.0) if sims.shape[1] else np.zeros(len(unknown))
        return float((len(words) - len(unknown) + best.sum()) / len(words))
