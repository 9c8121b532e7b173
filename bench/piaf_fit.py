"""Refit the fusion weights on PIAF's even split, to reproduce or update the `piaf` variants
of bench/piaf.py. It has no --split: the odd split is held out.

    python bench/piaf_fit.py [--weights piaf|piaf-lexical|piaf-clause|piaf-overlap|piaf-e5]
        [--limit N] [--l2 PENALTY]

Per question, each signal is pooled to its paragraph (best passage among the engine's
candidates); non-negative weights maximise the softmax probability of the right paragraph.
A 2-fold split by article inside the even split says how well the fit carries over; the
weights fitted on all even questions are printed as Python to paste.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import piaf
from scipy.optimize import minimize

from rag.embed import embed_questions
from rag.retrieve import signal_matrix


def paragraph_signals(engine, questions, variant):
    """Per question: (paragraph ids, their pooled signals, index of the right one or -1)."""
    rows, names = [], []
    for q in questions:
        ids, signals, names = signal_matrix(engine, q.text, with_overlap=variant.overlap,
                                            with_titled=variant.titled, every_model=True)
        docs = engine._doc_of[ids]
        unique, where = np.unique(docs, return_inverse=True)
        pooled = np.full((len(unique), signals.shape[1]), -np.inf, np.float32)
        np.maximum.at(pooled, where, signals)
        hit = np.flatnonzero(unique == q.paragraph)
        rows.append((unique, pooled, int(hit[0]) if len(hit) else -1))
    return rows, names


def fit(rows, dim: int, l2: float = 1e-3) -> np.ndarray:
    """Non-negative weights minimising the listwise cross-entropy of the right paragraph."""
    usable = [(x, t) for _, x, t in rows if t >= 0]

    def loss(w):
        total, grad = 0.0, np.zeros(dim)
        for x, t in usable:
            s = x @ w
            p = np.exp(s - s.max())
            p /= p.sum()
            total -= np.log(max(p[t], 1e-12))
            grad += x.T @ p - x[t]
        n = len(usable)
        return total / n + l2 * w @ w, grad / n + 2 * l2 * w

    result = minimize(loss, np.ones(dim), jac=True, method="L-BFGS-B",
                      bounds=[(0, None)] * dim)
    return result.x


def score(rows, w, n_docs: int, questions) -> dict:
    ranks = []
    for (unique, x, _), q in zip(rows, questions, strict=True):
        scores = np.full(n_docs, -np.inf)
        scores[unique] = x @ w
        ranks.append(piaf.rank_of(scores, q.paragraph))
    return piaf.metrics(ranks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="piaf-lexical",
                        choices=sorted(set(piaf.VARIANTS) - {"default"}))
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--l2", type=float, default=1e-3,
                        help="penalty on the squared weights (piaf-e5 was fitted with 3e-6)")
    args = parser.parse_args(argv)
    variant = piaf.VARIANTS[args.weights]
    paragraphs, questions = piaf.select(*piaf.load_piaf(), "even", args.limit)
    embedders = piaf.load_embedders(True)
    for emb in embedders.values():
        embed_questions(emb, [q.text for q in questions])
    engine = piaf.build_engine(piaf.build_corpus(paragraphs), embedders, variant.weights,
                               variant.k1)
    rows, names = paragraph_signals(engine, questions, variant)
    fold = np.array([(q.article // 2) % 2 for q in questions])
    for k in (0, 1):
        train = [r for r, f in zip(rows, fold, strict=True) if f != k]
        held = [i for i, f in enumerate(fold) if f == k]
        w = fit(train, len(names), args.l2)
        print(f"fold {k}: held-out", score([rows[i] for i in held], w, len(paragraphs),
                                           [questions[i] for i in held]))
    w = fit(rows, len(names), args.l2)
    print("all even questions:", score(rows, w, len(paragraphs), questions))
    w = w / w.sum()
    print("rank=(" + ", ".join(f'("{n}", {v:.4f})' for n, v in zip(names, w, strict=True))
          + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
