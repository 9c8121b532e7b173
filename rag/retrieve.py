"""Find the passages that address a question, by fusing several signals.

Each passage is scored by a weighted sum of: its own similarity to the question under each
embedding model and under French BM25, and the same signals for its whole answer and for the
interviewer question it answers (context that a one-sentence passage lacks). Dense cosines and
the normalised BM25 score are on fixed scales, so the fused score is comparable across
questions and a single calibrated threshold decides abstention.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .corpus import Document, Passage
from .embed import MULTILINGUAL_MODEL, Embedder, load_embedder
from .index import Index
from .lexical import BM25

SIGNALS = ("passage", "answer", "question")


@dataclass(frozen=True)
class Weights:
    """Fusion weights per (signal kind, scope), and the abstention threshold on the fused score.

    Calibrated on the public gold set with `rag eval --tune` (see docs/quality.md).
    """

    dense: tuple[float, float, float] = (0.25, 0.10, 0.10)  # the sentence-transformers model
    multilingual: tuple[float, float, float] = (1.0, 0.45, 0.35)
    lexical: tuple[float, float, float] = (0.9, 0.45, 0.35)
    threshold: float = 0.62
    candidates: int = 100


@dataclass(frozen=True)
class Hit:
    passage: Passage
    document: Document
    score: float
    signals: dict = field(default_factory=dict, compare=False)


@dataclass
class Engine:
    """An index with its embedders and lexical tables, ready to answer questions."""

    index: Index
    embedders: dict[str, Embedder]
    weights: Weights = Weights()
    _bm25: dict[str, BM25] = field(default_factory=dict, repr=False)

    def __post_init__(self):
        corpus = self.index.corpus
        self._bm25 = {
            "passage": BM25([p.text for p in corpus.passages]),
            "answer": BM25([corpus.document_text(d) for d in corpus.documents]),
            "question": BM25([d.question or "" for d in corpus.documents]),
        }
        self._doc_of = np.fromiter((p.doc for p in corpus.passages), dtype=np.int64,
                                   count=len(corpus.passages))


def open_engine(index: Index, *, weights: Weights = Weights(),
                embedders: dict[str, Embedder] | None = None) -> Engine:
    """An engine over a loaded index, loading each of its models once."""
    embedders = dict(embedders or {})
    for entry in index.manifest["models"]:
        if entry["name"] not in embedders:
            embedders[entry["name"]] = load_embedder(entry["name"])
    return Engine(index, embedders, weights)


def signal_matrix(engine: Engine, query: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Candidate passage ids and their raw signals (rows) by name (columns)."""
    corpus = engine.index.corpus
    n = len(corpus.passages)
    lex = {scope: bm25.scores(query) for scope, bm25 in engine._bm25.items()}
    qvecs = {name: emb.embed_batch([query])[0] for name, emb in engine.embedders.items()}
    if n <= engine.weights.candidates * 4:
        ids = np.arange(n)
    else:
        pool = set(np.argsort(-lex["passage"])[: engine.weights.candidates].tolist())
        for name, vec in engine.index.vectors.items():
            _, found = vec.faiss_index.search(qvecs[name][None, :], engine.weights.candidates)
            pool.update(int(i) for i in found[0] if i >= 0)
        ids = np.array(sorted(pool), dtype=np.int64)
    docs = engine._doc_of[ids]
    columns, names = [], []
    for name, vec in engine.index.vectors.items():
        q = qvecs[name]
        kind = "multilingual" if name == MULTILINGUAL_MODEL else "dense"
        columns += [vec.passages[ids] @ q, vec.documents[docs] @ q, vec.questions[docs] @ q]
        names += [f"{kind}.{s}" for s in SIGNALS]
    columns += [lex["passage"][ids], lex["answer"][docs], lex["question"][docs]]
    names += [f"lexical.{s}" for s in SIGNALS]
    return ids, np.stack(columns, axis=1).astype(np.float32), names


def fuse(signals: np.ndarray, names: list[str], weights: Weights) -> np.ndarray:
    """Weighted sum of signals; weights are normalised so the scale stays fixed."""
    w = weight_vector(names, weights)
    return signals @ w


def weight_vector(names: list[str], weights: Weights) -> np.ndarray:
    w = np.array([getattr(weights, n.split(".")[0])[SIGNALS.index(n.split(".")[1])]
                  for n in names], dtype=np.float32)
    return w / max(float(w.sum()), 1e-9)


def search(engine: Engine, query: str, *, k: int = 5) -> list[Hit]:
    """The k best passages for a query, best first, with their fused scores."""
    corpus = engine.index.corpus
    if not corpus.passages:
        return []
    ids, signals, names = signal_matrix(engine, query)
    scores = fuse(signals, names, engine.weights)
    order = np.argsort(-scores, kind="stable")[:k]
    hits = []
    for i in order:
        passage = corpus.passages[int(ids[i])]
        hits.append(Hit(passage, corpus.documents[passage.doc], float(scores[i]),
                        dict(zip(names, signals[i].tolist(), strict=True))))
    return hits
