"""The engine's BM25 as it was before its postings became numpy arrays: postings as Python
lists of (doc, tf) tuples, converted per query. Kept as the baseline `bench/scale.py` times
beside `rag.lexical.BM25`, and as the reference the array version must match exactly.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from rag.lexical import tokenize


@dataclass
class ListBM25:
    documents: list[str]
    k1: float = 1.2
    b: float = 0.75
    _postings: dict[str, list[tuple[int, int]]] = field(init=False, repr=False)

    def __post_init__(self):
        self._postings = {}
        lengths = np.zeros(len(self.documents), dtype=np.float32)
        for i, doc in enumerate(self.documents):
            terms = tokenize(doc)
            lengths[i] = len(terms)
            for term, tf in Counter(terms).items():
                self._postings.setdefault(term, []).append((i, tf))
        n = max(len(self.documents), 1)
        self._avg = float(lengths.mean()) if len(lengths) else 1.0
        self._norm = self.k1 * (1 - self.b + self.b * lengths / max(self._avg, 1e-9))
        self._idf = {t: math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5))
                     for t, p in self._postings.items()}
        self._max_idf = math.log(1 + (n - 0.5) / 1.5)

    @property
    def vocabulary(self) -> set[str]:
        return set(self._postings)

    def scores(self, query: str, ignore: set[str] | frozenset[str] = frozenset()) -> np.ndarray:
        out = np.zeros(len(self.documents), dtype=np.float32)
        terms = [t for t in tokenize(query) if t not in ignore]
        if not terms:
            return out
        best = 0.0
        for term in terms:
            postings = self._postings.get(term)
            idf = self._idf.get(term, self._max_idf)
            best += idf * (self.k1 + 1)
            if not postings:
                continue
            docs = np.fromiter((d for d, _ in postings), dtype=np.int64, count=len(postings))
            tfs = np.fromiter((t for _, t in postings), dtype=np.float32, count=len(postings))
            out[docs] += idf * tfs * (self.k1 + 1) / (tfs + self._norm[docs])
        return out / best if best > 0 else out

    def scores_of(self, query: str, ids: np.ndarray,
                  ignore: set[str] | frozenset[str] = frozenset()) -> np.ndarray:
        """Every document scored, then those asked: how the engine read them before."""
        return self.scores(query, ignore=ignore)[ids]
