"""Classic Okapi BM25 with the Snowball French stemmer: the lexical baseline for PIAF.

Kept apart from rag.lexical on purpose, so the engine is measured against the textbook
method rather than against itself.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np
import snowballstemmer

# The Snowball project's French stop list (forms of être and avoir included).
STOP_WORDS = frozenset("""
au aux avec ce ces dans de des du elle en et eux il ils je la le les leur lui ma mais me même mes
moi mon ne nos notre nous on ou par pas pour qu que qui sa se ses son sur ta te tes toi ton tu un
une vos votre vous c d j l à m n s t y été étée étées étés étant étante étants étantes suis es est
sommes êtes sont serai seras sera serons serez seront serais serait serions seriez seraient étais
était étions étiez étaient fus fut fûmes fûtes furent sois soit soyons soyez soient fusse fusses
fût fussions fussiez fussent ayant ayante ayantes ayants eu eue eues eus ai as avons avez ont aurai
auras aura aurons aurez auront aurais aurait aurions auriez auraient avais avait avions aviez
avaient eut eûmes eûtes eurent aie aies ait ayons ayez aient eusse eusses eût eussions eussiez
eussent
""".split())

_WORD = re.compile(r"\w+", re.UNICODE)
_ELISION = re.compile(r"\b(?:[ldjmnstc]|qu|jusqu|lorsqu|puisqu)['’]", re.IGNORECASE)
_STEMMER = snowballstemmer.stemmer("french")


def tokenize(text: str) -> list[str]:
    """Lower-cased words, elisions split, stop words dropped, Snowball-stemmed."""
    words = _WORD.findall(_ELISION.sub(" ", text.lower()))
    return _STEMMER.stemWords([w for w in words if w not in STOP_WORDS])


class OkapiBM25:
    """Okapi BM25 (Robertson idf with +1 so it stays positive), raw scores."""

    def __init__(self, documents: list[str], k1: float = 1.2, b: float = 0.75):
        self.k1, self.b = k1, b
        self.postings: dict[str, list[tuple[int, int]]] = {}
        lengths = np.zeros(len(documents), np.float32)
        for i, doc in enumerate(documents):
            terms = tokenize(doc)
            lengths[i] = len(terms)
            for term, tf in Counter(terms).items():
                self.postings.setdefault(term, []).append((i, tf))
        n = len(documents)
        self.size = n
        self.norm = k1 * (1 - b + b * lengths / max(float(lengths.mean()), 1e-9)) if n else lengths
        self.idf = {t: math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5))
                    for t, p in self.postings.items()}

    def scores(self, query: str) -> np.ndarray:
        out = np.zeros(self.size, np.float32)
        for term in tokenize(query):
            postings = self.postings.get(term)
            if not postings:
                continue
            docs = np.array([d for d, _ in postings])
            tfs = np.array([t for _, t in postings], np.float32)
            out[docs] += self.idf[term] * tfs * (self.k1 + 1) / (tfs + self.norm[docs])
        return out
