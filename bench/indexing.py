"""Indexing throughput: the engine's embedding of PIAF against plain `SentenceTransformer.encode`.

The texts are PIAF's 1,518 paragraphs and their passages (sentences, cut as the engine cuts
answers). The baseline encodes every paragraph and every passage with sentence-transformers'
defaults, the tutorial way. The engine (`rag.index.embed_corpus` with the default int8 ONNX
backend) runs its model over the passages only and pools each paragraph's vector from its
passages' tokens. Both produce a vector per paragraph and per passage; throughput counts those
texts per second. Runs alternate baseline and engine, and medians are reported.

Quality beside it: R@1 and R@5 of the even-article questions against the paragraph vectors,
each side encoding the question its own way, so "quality unchanged" is checked, not assumed.

    python bench/indexing.py [--limit N] [--repeat 2] [--backends onnx-int8,onnx] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import piaf  # noqa: E402

from rag.embed import DEFAULT_MODEL, load_embedder, resolve_model  # noqa: E402
from rag.index import embed_corpus  # noqa: E402


def recall(queries: np.ndarray, paragraphs: np.ndarray, targets: np.ndarray) -> dict:
    scores = queries @ paragraphs.T
    ranks = (scores >= scores[np.arange(len(targets)), targets][:, None]).sum(axis=1)
    return {"R@1": round(float(np.mean(ranks <= 1)), 4),
            "R@5": round(float(np.mean(ranks <= 5)), 4)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="index only the first N paragraphs")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs of each side")
    parser.add_argument("--backends", default="onnx-int8,onnx")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from sentence_transformers import SentenceTransformer

    paragraphs, questions = piaf.load_piaf()
    paragraphs, questions = piaf.select(paragraphs, questions, "even", args.limit)
    corpus = piaf.build_corpus(paragraphs)
    texts = [p.text for p in paragraphs] + [p.text for p in corpus.passages]
    targets = np.array([q.paragraph for q in questions])
    n_par = len(paragraphs)

    plain = SentenceTransformer(resolve_model(DEFAULT_MODEL), device="cpu")
    ours = {b: load_embedder(DEFAULT_MODEL, backend=b) for b in args.backends.split(",")}
    plain.encode(texts[:16])
    for emb in ours.values():
        emb.embed_batch(texts[:16])

    times: dict[str, list[float]] = {"plain encode": []} | {b: [] for b in ours}
    vectors: dict[str, np.ndarray] = {}
    for _ in range(args.repeat):
        start = time.perf_counter()
        matrix = plain.encode(texts)
        times["plain encode"].append(time.perf_counter() - start)
        vectors["plain encode"] = matrix[:n_par] / np.linalg.norm(matrix[:n_par], axis=1,
                                                                 keepdims=True)
        for backend, emb in ours.items():
            start = time.perf_counter()
            built = embed_corpus(corpus, emb)
            times[backend].append(time.perf_counter() - start)
            vectors[backend] = built.documents

    question_texts = [q.text for q in questions]
    query = {"plain encode": plain.encode(question_texts, normalize_embeddings=True)}
    query |= {b: emb.embed_batch(question_texts) for b, emb in ours.items()}
    base = float(np.median(times["plain encode"]))
    rows = {}
    for name, runs in times.items():
        median = float(np.median(runs))
        rows[name] = {"seconds": round(median, 2), "texts_per_s": round(len(texts) / median, 1),
                      "speedup": round(base / median, 2),
                      **recall(query[name], vectors[name], targets)}
    report = {"paragraphs": n_par, "passages": len(corpus.passages), "texts": len(texts),
              "questions": len(questions), "repeat": args.repeat, "rows": rows}
    print(f"{n_par} paragraphs + {len(corpus.passages)} passages = {len(texts)} texts; "
          f"{len(questions)} even-split questions; medians of {args.repeat} runs")
    print(f"{'':24}{'seconds':>9}{'texts/s':>9}{'speedup':>9}{'R@1':>8}{'R@5':>8}")
    for name, r in rows.items():
        label = name if name == "plain encode" else f"engine ({name})"
        print(f"{label:24}{r['seconds']:>9}{r['texts_per_s']:>9}{r['speedup']:>8}x"
              f"{r['R@1']:>8}{r['R@5']:>8}")
    if args.json:
        print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
