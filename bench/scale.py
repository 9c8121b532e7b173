"""Retrieval latency and memory as the corpus grows from a thousand to a million passages, so
the index the engine picks by size is chosen on figures, and a regression at scale shows.

    python bench/scale.py [--sizes 1e3,1e4,1e5,1e6] [--queries 200] [--models minilm,use]
                          [--lexical-sizes ...] [--engine-sizes ...] [--json] [--smoke]

Dense side, per model and size: exact `IndexFlatIP` (the baseline) against approximate indexes
(HNSW and IVF at a few settings, the engine's own among them), one query at a time as the
engine searches: p50 and p95 latency, their ratio to exact, recall@10 against exact, the
index's serialised size and its build time.

Vectors: real embeddings of PIAF text (every passage as the engine cuts it, each passage with
its article title, every whole paragraph: 14,156 per model, shuffled) fill the first rows; past
them, each synthetic vector is a random real one plus Gaussian noise drawn with the real
vectors' covariance, renormalised, which leaves it as far from its parent as real neighbours
are from each other (median cosine 0.77 against 0.70) and keeps the data's anisotropy.
Queries are real PIAF questions from the even (tuning) split, never in the base.

Lexical side: `rag.lexical.BM25.scores` against the list-postings BM25 it replaced
(`bench/bm25_lists.py`), over PIAF passages; past the 6,319 real ones, copies with their
words shuffled. Engine side: `rag.retrieve.search` over such a corpus with synthetic vectors
(query encoding excluded), against the same engine with list BM25 and exact FAISS, and the
same search limited to the sources of 1 % of the passages (`sources=`), against all of them;
the engine's top 10 against the same engine's with exact dense search (recall@10, and how often
the first passage is the same), and the same at other graph search depths (`--engine-depths`):
what a user gets from the approximate index, which is what the engine's depth is chosen on.

Built approximate indexes of 100k vectors and more are cached in bench/.cache/scale/.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import faiss  # noqa: E402
from bm25_lists import ListBM25  # noqa: E402
from embed_cache import CACHE, cached  # noqa: E402
from piaf import DATA, Paragraph, build_corpus, load_piaf  # noqa: E402

from rag import index as rag_index  # noqa: E402
from rag.embed import DEFAULT_MODEL, MULTILINGUAL_MODEL, load_embedder  # noqa: E402
from rag.index import Index, Vectors, make_faiss_index  # noqa: E402
from rag.lexical import BM25  # noqa: E402
from rag.respell import respell  # noqa: E402
from rag.retrieve import Engine, search, select_sources  # noqa: E402

MODELS = {"minilm": DEFAULT_MODEL, "use": MULTILINGUAL_MODEL}
K = 10
NOISE = 1.0  # noise scale, in units of the real vectors' own spread
SEED = 0
SELECTED = 0.01  # share of the passages a question names its sources for (engine rows)


@dataclass(frozen=True)
class Approx:
    """An approximate index and the search-time settings tried on it."""

    kind: str  # "hnsw" or "ivf"
    build: int  # HNSW M, or IVF lists per sqrt(n)
    construction: int = 0  # HNSW efConstruction
    searches: tuple[int, ...] = ()  # HNSW efSearch, or IVF nprobe

    def label(self, search: int) -> str:
        if self.kind == "hnsw":
            return f"HNSW{self.build} efC{self.construction} ef{search}"
        return f"IVF{self.build}sqrt nprobe{search}"


def engine_approx() -> Approx:
    """The HNSW the engine builds above rag.index.FLAT_LIMIT."""
    return Approx("hnsw", rag_index.HNSW_M, rag_index.HNSW_EF_CONSTRUCTION,
                  tuple(ef for _, ef in rag_index.HNSW_EF_SEARCH))


CANDIDATES = (
    Approx("hnsw", 32, 80, (32, 64, 128, 256, 512, 1024)),
    Approx("ivf", 4, 0, (16, 64, 128, 256)),
)


# ---- data -------------------------------------------------------------------------------

def piaf_texts(limit: int | None) -> tuple[list[str], list[str], list[Paragraph]]:
    """Base texts (passages, title + passage pairs, paragraphs) and even-split questions."""
    paragraphs, questions = load_piaf(DATA)
    paragraphs = paragraphs[:limit] if limit else paragraphs
    corpus = build_corpus(paragraphs)
    passages = [p.text for p in corpus.passages]
    pairs = [f"{paragraphs[p.doc].title} {p.text}" for p in corpus.passages]
    asked = [q.text for q in questions if q.article % 2 == 0 and q.paragraph < len(paragraphs)]
    return passages + pairs + [p.text for p in paragraphs], asked, paragraphs


def real_vectors(model: str, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Real base vectors (shuffled) and question vectors, from the embedding cache."""
    base_texts, asked, _ = piaf_texts(limit)
    embedder = cached(_Lazy(model))
    base = embedder.embed_batch(base_texts)
    queries = embedder.embed_batch(asked)
    order = np.random.default_rng(SEED).permutation(len(base))
    return np.ascontiguousarray(base[order]), queries


class _Lazy:
    """Loads the model only if the cache misses, so a cached run never loads it."""

    def __init__(self, name: str):
        self.name, self.dim, self._inner = name, {DEFAULT_MODEL: 384}.get(name, 512), None

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        self._inner = self._inner or load_embedder(self.name, backend="torch")
        return self._inner.embed_batch(texts)


def grow(real: np.ndarray, n: int, seed: int = SEED) -> np.ndarray:
    """n unit vectors: the real ones first, then real ones plus data-shaped noise."""
    if n <= len(real):
        return real[:n].copy()
    rng = np.random.default_rng(seed)
    cov = np.cov(real.T).astype(np.float64) + 1e-6 * np.eye(real.shape[1])
    shape = (np.linalg.cholesky(cov).T * NOISE).astype(np.float32)
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    out[:len(real)] = real
    step = 65536
    for start in range(len(real), n, step):
        stop = min(start + step, n)
        rows = real[rng.integers(0, len(real), stop - start)]
        rows = rows + rng.standard_normal(rows.shape, dtype=np.float32) @ shape
        out[start:stop] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return out


# ---- dense ------------------------------------------------------------------------------

def with_engine(candidates: tuple[Approx, ...]) -> list[Approx]:
    """The candidates, with the engine's own index and search setting among them."""
    engine, specs, found = engine_approx(), [], False
    for spec in candidates:
        if (spec.kind, spec.build, spec.construction) == (
                engine.kind, engine.build, engine.construction):
            spec = Approx(spec.kind, spec.build, spec.construction,
                          tuple(sorted(set(spec.searches) | set(engine.searches))))
            found = True
        specs.append(spec)
    return specs if found else specs + [engine]


def build_approx(spec: Approx, vectors: np.ndarray, cache_key: str | None):
    """Build (or load from the cache) an approximate inner-product index over the vectors."""
    path = CACHE / "scale" / f"{cache_key}-{spec.kind}{spec.build}-{spec.construction}.faiss" \
        if cache_key else None
    if path and path.exists():
        return faiss.read_index(str(path)), None
    n, dim = vectors.shape
    start = time.perf_counter()
    if spec.kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, spec.build, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = spec.construction
    else:
        lists = max(1, min(int(spec.build * np.sqrt(n)), n // 39))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, lists,
                                   faiss.METRIC_INNER_PRODUCT)
        sample = vectors[np.random.default_rng(SEED).permutation(n)[:lists * 64]]
        index.train(sample)
    index.add(vectors)
    seconds = time.perf_counter() - start
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        faiss.write_index(index, str(path) + ".tmp")
        os.replace(str(path) + ".tmp", path)
    return index, seconds


def set_search(index, spec: Approx, value: int) -> None:
    if spec.kind == "hnsw":
        index.hnsw.efSearch = value
    else:
        index.nprobe = value


def timed_search(index, queries: np.ndarray, k: int = K) -> tuple[np.ndarray, np.ndarray]:
    """Each query searched alone, as the engine does; ids and per-query seconds."""
    ids = np.empty((len(queries), k), dtype=np.int64)
    seconds = np.empty(len(queries))
    index.search(queries[:1], k)  # warm-up
    for i in range(len(queries)):
        start = time.perf_counter()
        _, found = index.search(queries[i:i + 1], k)
        seconds[i] = time.perf_counter() - start
        ids[i] = found[0]
    return ids, seconds


def recall(found, truth) -> float:
    """Mean share of each reference row (ids) that the found row holds."""
    return float(np.mean([len(set(a) & set(b)) / max(len(b), 1)
                          for a, b in zip(found, truth, strict=True)]))


def index_bytes(index) -> int:
    return int(faiss.serialize_index(index).size)


def ms(seconds: np.ndarray, q: float) -> float:
    return round(float(np.percentile(seconds, q)) * 1000, 3)


def dense_rows(model: str, vectors: np.ndarray, queries: np.ndarray, sizes: list[int],
               candidates: tuple[Approx, ...], cache_tag: str | None) -> list[dict]:
    """Exact and approximate search figures at each size, exact first."""
    rows = []
    engine = engine_approx()
    for n in sizes:
        base = vectors[:n]
        exact = faiss.IndexFlatIP(base.shape[1])
        exact.add(base)
        truth, seconds = timed_search(exact, queries)
        flat = {"model": model, "size": n, "index": "Flat (exact)", "p50_ms": ms(seconds, 50),
                "p95_ms": ms(seconds, 95), "recall@10": 1.0, "bytes": index_bytes(exact),
                "build_s": 0.0, "engine": n <= rag_index.FLAT_LIMIT}
        rows.append(flat)
        del exact
        for spec in with_engine(candidates):
            key = f"{cache_tag}-{n}" if cache_tag and n >= 100_000 else None
            index, built = build_approx(spec, base, key)
            size = index_bytes(index)
            for value in spec.searches:
                set_search(index, spec, value)
                found, seconds = timed_search(index, queries)
                mine = (spec.kind, spec.build, spec.construction, value) == (
                    engine.kind, engine.build, engine.construction,
                    rag_index.hnsw_ef_search(n))
                rows.append({"model": model, "size": n, "index": spec.label(value),
                             "p50_ms": ms(seconds, 50), "p95_ms": ms(seconds, 95),
                             "recall@10": round(recall(found, truth), 4), "bytes": size,
                             "build_s": None if built is None else round(built, 1),
                             "engine": mine and n > rag_index.FLAT_LIMIT})
                rows[-1]["p50_ratio"] = round(rows[-1]["p50_ms"] / flat["p50_ms"], 4)
                rows[-1]["p95_ratio"] = round(rows[-1]["p95_ms"] / flat["p95_ms"], 4)
            del index
        print(dense_table([r for r in rows if r["size"] == n]), flush=True)
    return rows


def dense_table(rows: list[dict]) -> str:
    lines = []
    for r in rows:
        mark = "*" if r["engine"] else " "
        ratio = f"{r.get('p50_ratio', 1.0):8.3f}"
        built = "cached" if r["build_s"] is None else f"{r['build_s']:.0f}s"
        lines.append(f"{r['model'][:12]:12} {r['size']:>8} {mark}{r['index']:26} "
                     f"{r['p50_ms']:9.3f} {r['p95_ms']:9.3f} {ratio} {r['recall@10']:7.3f} "
                     f"{r['bytes'] / 2**20:9.1f} {built:>7}")
    return "\n".join(lines)


DENSE_HEADER = (f"{'model':12} {'size':>8}  {'index':26} {'p50 ms':>9} {'p95 ms':>9} "
                f"{'p50/exact':>8} {'R@10':>7} {'MiB':>9} {'build':>7}")


# ---- lexical ----------------------------------------------------------------------------

def shuffled_copies(texts: list[str], n: int, seed: int = SEED) -> list[str]:
    """n documents: the real texts, then copies of them with their words shuffled."""
    rng = random.Random(seed)
    out = list(texts[:n])
    while len(out) < n:
        words = texts[len(out) % len(texts)].split()
        rng.shuffle(words)
        out.append(" ".join(words))
    return out


def lexical_rows(passages: list[str], queries: list[str], sizes: list[int],
                 baseline_limit: int) -> list[dict]:
    """BM25 build and per-query scoring time, array postings against list postings."""
    rows = []
    for n in sizes:
        documents = shuffled_copies(passages, n)
        row = {"size": n}
        for name, cls in (("arrays", BM25), ("lists", ListBM25)):
            if name == "lists" and n > baseline_limit:
                continue
            start = time.perf_counter()
            bm25 = cls(documents)
            row[f"{name}_build_s"] = round(time.perf_counter() - start, 2)
            seconds = np.empty(len(queries))
            for i, query in enumerate(queries):
                start = time.perf_counter()
                bm25.scores(query)
                seconds[i] = time.perf_counter() - start
            row[f"{name}_p50_ms"], row[f"{name}_p95_ms"] = ms(seconds, 50), ms(seconds, 95)
            if name == "arrays":
                arrays = bm25
            else:
                row["p50_ratio"] = round(row["arrays_p50_ms"] / row["lists_p50_ms"], 4)
                row["same_scores"] = all(np.array_equal(arrays.scores(q), bm25.scores(q))
                                         for q in queries[:20])
            del bm25
        del arrays
        rows.append(row)
        print(lexical_table([row]), flush=True)
    return rows


def lexical_table(rows: list[dict]) -> str:
    lines = []
    for r in rows:
        lists = (f"{r['lists_p50_ms']:10.2f} {r['lists_p95_ms']:10.2f} {r['p50_ratio']:8.3f}"
                 if "lists_p50_ms" in r else f"{'-':>10} {'-':>10} {'-':>8}")
        lines.append(f"{r['size']:>8} {r['arrays_p50_ms']:10.2f} {r['arrays_p95_ms']:10.2f} "
                     f"{lists} {r['arrays_build_s']:8.1f}")
    return "\n".join(lines)


LEXICAL_HEADER = (f"{'size':>8} {'p50 ms':>10} {'p95 ms':>10} {'list p50':>10} "
                  f"{'list p95':>10} {'p50/list':>8} {'build s':>8}")


# ---- engine -----------------------------------------------------------------------------

class _Fixed:
    """An embedder that returns precomputed query vectors, so encoding is not timed."""

    def __init__(self, name: str, table: dict[str, np.ndarray]):
        self.name, self.table = name, table
        self.dim = len(next(iter(table.values())))

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.table[t] for t in texts])


class ExactSearch:
    """Exact inner-product search over vectors already in memory, as a FAISS index answers:
    the reference for the whole search's recall (an `IndexFlatIP` would copy the vectors,
    3.4 GB more at a million passages)."""

    def __init__(self, vectors: np.ndarray):
        self.vectors, self.ntotal = vectors, len(vectors)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = self.vectors @ queries[0]
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return scores[top][None, :], top[None, :]


def scaled_engine(paragraphs: list[Paragraph], n: int, dense: dict[str, np.ndarray],
                  queries: dict[str, dict[str, np.ndarray]],
                  cache_tag: dict[str, str] | None,
                  graph_above: int = rag_index.FLAT_LIMIT) -> Engine:
    """An engine over n passages: PIAF paragraphs then word-shuffled copies, with synthetic
    vectors standing in for their embeddings, and the FAISS index the engine picks for n
    (a graph above `graph_above` passages, the engine's own limit unless told)."""
    rounds = -(-n // len(build_corpus(paragraphs).passages))
    while True:  # shuffled words cut into fewer passages than the real text
        texts = shuffled_copies([p.text for p in paragraphs], len(paragraphs) * rounds)
        corpus = build_corpus([Paragraph(p.article, p.title, t)
                               for p, t in zip(paragraphs * rounds, texts, strict=True)])
        if len(corpus.passages) >= n:
            break
        rounds = int(rounds * 1.5 * n / len(corpus.passages)) + 1
    corpus.passages = corpus.passages[:n]
    corpus.documents = corpus.documents[:corpus.passages[-1].doc + 1]
    m = len(corpus.documents)
    vectors = {}
    for i, (model, matrix) in enumerate(dense.items()):
        p = matrix[:n]
        rng = np.random.default_rng(i)
        if n > graph_above:  # make_faiss_index's choice, through the build cache
            key = f"{cache_tag[model]}-{n}" if cache_tag else None
            faiss_index, _ = build_approx(engine_approx(), p, key)
            set_search(faiss_index, engine_approx(), rag_index.hnsw_ef_search(n))
        else:
            faiss_index = make_faiss_index(p)
        vectors[model] = Vectors(p, matrix[rng.integers(0, len(matrix), m)],
                                 matrix[rng.integers(0, len(matrix), m)],
                                 matrix[rng.integers(0, len(matrix), n)], faiss_index)
    embedders = {model: _Fixed(model, table) for model, table in queries.items()}
    manifest = {"models": [{"name": m, "dim": v.passages.shape[1]} for m, v in vectors.items()]}
    engine = Engine(Index(corpus, vectors, manifest), embedders)
    for embedder in embedders.values():  # the engine asks for each question as it reads it
        embedder.table = {respell(text, engine._spelling): vector
                          for text, vector in embedder.table.items()}
    return engine


def engine_rows(paragraphs: list[Paragraph], sizes: list[int], dense: dict[str, np.ndarray],
                queries: dict[str, dict[str, np.ndarray]], baseline_limit: int,
                cache_tag: dict[str, str] | None, depths: list[int],
                graph_above: int = rag_index.FLAT_LIMIT) -> list[dict]:
    """Whole retrieval (rag.retrieve.search): the engine as it is, its top 10 against the same
    engine's with exact dense search, the graph searched at other `depths` (efSearch), and
    the engine against list BM25 + exact search."""
    rows = []
    texts = list(next(iter(queries.values())))
    for n in sizes:
        start = time.perf_counter()
        engine = scaled_engine(paragraphs, n, dense, queries, cache_tag, graph_above)
        row = {"size": len(engine.index.corpus.passages),
               "build_s": round(time.perf_counter() - start, 1)}
        row["p50_ms"], row["p95_ms"], found = _engine_latency(engine, texts)
        indexes = {name: vec.faiss_index for name, vec in engine.index.vectors.items()}
        for vec in engine.index.vectors.values():
            vec.faiss_index = ExactSearch(vec.passages)
        truth = _engine_latency(engine, texts, warm=False)[2]
        for name, vec in engine.index.vectors.items():
            vec.faiss_index = indexes[name]
        row["recall@10"], row["top1"] = agreement(found, truth)
        graphs = [index for index in indexes.values() if hasattr(index, "hnsw")]
        if graphs:
            row["ef_search"] = graphs[0].hnsw.efSearch
            row["depths"] = []
            for ef in depths:
                for index in graphs:
                    index.hnsw.efSearch = ef
                p50, p95, found = _engine_latency(engine, texts)
                row["depths"].append({"ef_search": ef, "p50_ms": p50, "p95_ms": p95,
                                      **dict(zip(("recall@10", "top1"), agreement(found, truth),
                                                 strict=True))})
            for index in graphs:
                index.hnsw.efSearch = row["ef_search"]
        chosen = few_sources(engine, SELECTED)
        row["selected"] = int(select_sources(engine, chosen).mask.sum())
        row["sel_p50_ms"], row["sel_p95_ms"], _ = _engine_latency(engine, texts, chosen)
        row["sel_ratio"] = round(row["sel_p50_ms"] / row["p50_ms"], 4)
        if n <= baseline_limit:
            engine._bm25 = {s: ListBM25(b.documents) for s, b in engine._bm25.items()}
            for vec in engine.index.vectors.values():
                vec.faiss_index = faiss.IndexFlatIP(vec.passages.shape[1])
                vec.faiss_index.add(vec.passages)
            row["baseline_p50_ms"], row["baseline_p95_ms"], _ = _engine_latency(engine, texts)
            row["p50_ratio"] = round(row["p50_ms"] / row["baseline_p50_ms"], 4)
        del engine
        rows.append(row)
        print(engine_table([row]), flush=True)
    return rows


def few_sources(engine: Engine, share: float) -> list[str]:
    """Random sources (PIAF paragraphs) holding about `share` of the passages: what a portal
    asks when a question names a few interviews of a large collection."""
    names = list(engine.index.corpus.texts)
    counts = np.bincount(engine._source_of, minlength=len(names))
    order = np.random.default_rng(SEED).permutation(len(names))
    upto = int(np.searchsorted(np.cumsum(counts[order]), share * len(engine._source_of))) + 1
    return [names[i] for i in order[:upto]]


def _engine_latency(engine: Engine, texts: list[str], sources: list[str] | None = None,
                    warm: bool = True) -> tuple[float, float, list[list[int]]]:
    """p50 and p95 of `search` over the texts, and each one's top 10 passage ids. `warm`: ask
    them all once first, so the first figures at a million passages do not include bringing
    gigabytes of graph into the CPU's reach."""
    for text in texts if warm else texts[:1]:
        search(engine, text, sources=sources)
    seconds, found = np.empty(len(texts)), []
    for i, text in enumerate(texts):
        start = time.perf_counter()
        hits = search(engine, text, k=K, sources=sources)
        seconds[i] = time.perf_counter() - start
        found.append([hit.passage.id for hit in hits])
    return ms(seconds, 50), ms(seconds, 95), found


def agreement(found: list[list[int]], truth: list[list[int]]) -> tuple[float, float]:
    """Recall@10 of the found top 10s against the reference ones, and how often the first
    passage is the same."""
    first = np.mean([f[:1] == t[:1] for f, t in zip(found, truth, strict=True)])
    return round(recall(found, truth), 4), round(float(first), 4)


def engine_table(rows: list[dict]) -> str:
    lines = []
    for r in rows:
        base = (f"{r['baseline_p50_ms']:10.2f} {r['baseline_p95_ms']:10.2f} "
                f"{r['p50_ratio']:8.3f}" if "baseline_p50_ms" in r
                else f"{'-':>10} {'-':>10} {'-':>8}")
        lines.append(f"{r['size']:>8} {r['p50_ms']:10.2f} {r['p95_ms']:10.2f} {base} "
                     f"{r['sel_p50_ms']:10.2f} {r['sel_p95_ms']:10.2f} {r['sel_ratio']:8.3f} "
                     f"{r['recall@10']:8.3f} {r['top1']:6.3f}")
        for d in r.get("depths", []):
            lines.append(f"{'':>8} efSearch {d['ef_search']:>5} (engine: {r['ef_search']}): p50 "
                         f"{d['p50_ms']:.2f} ms, p95 {d['p95_ms']:.2f} ms, recall@10 "
                         f"{d['recall@10']:.3f}, top-1 {d['top1']:.3f}")
    return "\n".join(lines)


ENGINE_HEADER = (f"{'size':>8} {'p50 ms':>10} {'p95 ms':>10} {'base p50':>10} "
                 f"{'base p95':>10} {'p50/base':>8} {'1% p50':>10} {'1% p95':>10} "
                 f"{'1%/all':>8} {'rec@10':>8} {'top-1':>6}")


# ---- plot and main ----------------------------------------------------------------------

def xy(points: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    return [x for x, _ in points], [y for _, y in points]


def plot(report: dict, path: Path) -> None:
    """Median latency against corpus size, log-log: exact, the engine's index, the rest."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    for model in sorted({r["model"] for r in report["dense"]}):
        rows = [r for r in report["dense"] if r["model"] == model]
        short = model.split("/")[-1]
        for label in dict.fromkeys(r["index"] for r in rows):
            line = sorted((r["size"], r["p50_ms"]) for r in rows if r["index"] == label)
            if len(line) < 2:
                continue
            exact = label.startswith("Flat")
            ax.plot(*xy(line), marker="o", lw=2.2 if exact else 0.9,
                    alpha=1.0 if exact else 0.4, label=f"{short}: {label}" if exact else None)
        chosen = sorted((r["size"], r["p50_ms"]) for r in rows if r["engine"])
        ax.plot(*xy(chosen), marker="*", markersize=9, lw=2.4,
                label=f"{short}: the engine's index at each size")
    if report.get("lexical"):
        line = [(r["size"], r["arrays_p50_ms"]) for r in report["lexical"]]
        ax.plot(*xy(line), marker="s", ls="--", color="black", label="BM25 scores (arrays)")
    if report.get("engine"):
        line = [(r["size"], r["p50_ms"]) for r in report["engine"]]
        ax.plot(*xy(line), marker="D", ls=":", color="purple", label="engine search()")
    ax.axhline(10, color="grey", lw=0.8, ls=":")
    ax.set(xscale="log", yscale="log", xlabel="passages", ylabel="p50 latency per query (ms)",
           title="Retrieval latency against corpus size (one query at a time, 2 cores)")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(True, which="both", alpha=0.25)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def markdown(report: dict) -> str:
    """The report as the tables in docs/performance.md."""
    out = ["| model | passages | index | p50 ms | p95 ms | p50 / exact | p95 / exact "
           "| recall@10 | index MiB |", "|" + " --- |" * 9]
    for r in report["dense"]:
        name = f"**{r['index']}**" if r["engine"] else r["index"]
        out.append(f"| {r['model'].split('/')[-1]} | {r['size']:,} | {name} | {r['p50_ms']:.2f} "
                   f"| {r['p95_ms']:.2f} | {r.get('p50_ratio', 1.0):.3f} "
                   f"| {r.get('p95_ratio', 1.0):.3f} | {r['recall@10']:.3f} "
                   f"| {r['bytes'] / 2**20:,.0f} |")
    if report["lexical"]:
        out += ["", "| passages | BM25 arrays p50 ms | p95 ms | lists p50 ms | p95 ms "
                "| p50 arrays / lists | build s (arrays / lists) |", "|" + " --- |" * 7]
        for r in report["lexical"]:
            lists = (f"{r['lists_p50_ms']:.2f} | {r['lists_p95_ms']:.2f} | {r['p50_ratio']:.3f}"
                     if "lists_p50_ms" in r else "– | – | –")
            build = f"{r['arrays_build_s']:.1f} / {r.get('lists_build_s', float('nan')):.1f}"
            out.append(f"| {r['size']:,} | {r['arrays_p50_ms']:.2f} | {r['arrays_p95_ms']:.2f} "
                       f"| {lists} | {build} |")
    if report["engine"]:
        out += ["", "| passages | search() p50 ms | p95 ms | baseline p50 ms | p95 ms "
                "| p50 / baseline | sources of 1 %: p50 ms | p95 ms | p50 / all "
                "| recall@10 | top-1 |", "|" + " --- |" * 11]
        for r in report["engine"]:
            base = (f"{r['baseline_p50_ms']:.2f} | {r['baseline_p95_ms']:.2f} "
                    f"| {r['p50_ratio']:.3f}" if "baseline_p50_ms" in r else "– | – | –")
            out.append(f"| {r['size']:,} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {base} "
                       f"| {r['sel_p50_ms']:.2f} | {r['sel_p95_ms']:.2f} "
                       f"| {r['sel_ratio']:.3f} | {r['recall@10']:.3f} | {r['top1']:.3f} |")
        depths = [(r["size"], r["ef_search"], d) for r in report["engine"]
                  for d in r.get("depths", [])]
        if depths:
            out += ["", "| passages | efSearch | search() p50 ms | p95 ms | recall@10 | top-1 |",
                    "|" + " --- |" * 6]
            for size, own, d in depths:
                ef = f"**{d['ef_search']}**" if d["ef_search"] == own else str(d["ef_search"])
                out.append(f"| {size:,} | {ef} | {d['p50_ms']:.2f} | {d['p95_ms']:.2f} "
                           f"| {d['recall@10']:.3f} | {d['top1']:.3f} |")
    return "\n".join(out)


def sizes_arg(text: str) -> list[int]:
    return [int(float(s)) for s in text.split(",") if s.strip()]


def run(args) -> dict:
    report = {"queries": args.queries, "noise": NOISE, "dense": [], "lexical": [],
              "engine": [], "engine_index": {
                  "flat_limit": rag_index.FLAT_LIMIT,
                  "approx": f"HNSW{rag_index.HNSW_M} efC{rag_index.HNSW_EF_CONSTRUCTION}",
                  "ef_search": [list(step) for step in rag_index.HNSW_EF_SEARCH]}}
    dense, query_vectors = {}, {}
    _, asked, paragraphs = piaf_texts(args.limit)
    asked = asked[:args.queries]
    largest = max(args.sizes + args.engine_sizes, default=0)
    cache_tags: dict[str, str] | None = None if args.smoke else {}
    print(DENSE_HEADER)
    for short in args.models:
        model = MODELS[short]
        real, queries = real_vectors(model, args.limit)
        if cache_tags is not None:  # built indexes are only reused over the same vectors
            fingerprint = hashlib.sha1(real.tobytes()).hexdigest()[:10]
            cache_tags[model] = f"s{SEED}n{NOISE}-{model.split('/')[-1]}-{fingerprint}"
        queries = queries[:args.queries]
        dense[model] = grow(real, largest)
        query_vectors[model] = dict(zip(asked, queries, strict=True))
        report["real_vectors"] = len(real)
        report["dense"] += dense_rows(model, dense[model], queries, args.sizes, CANDIDATES,
                                      cache_tags and cache_tags[model])
    if args.lexical_sizes:
        print(LEXICAL_HEADER)
        passages = [p.text for p in build_corpus(paragraphs).passages]
        report["lexical"] = lexical_rows(passages, asked, args.lexical_sizes,
                                         args.baseline_limit)
    if args.engine_sizes:
        print(ENGINE_HEADER)
        report["engine"] = engine_rows(paragraphs, args.engine_sizes, dense, query_vectors,
                                       args.baseline_limit, cache_tags, args.engine_depths,
                                       args.graph_above)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=sizes_arg, default=sizes_arg("1e3,1e4,1e5,1e6"))
    parser.add_argument("--lexical-sizes", type=sizes_arg, default=sizes_arg("1e3,1e4,1e5,1e6"))
    parser.add_argument("--engine-sizes", type=sizes_arg, default=sizes_arg("1e4,1e5"))
    parser.add_argument("--engine-depths", type=sizes_arg, default=sizes_arg("128,256,1024"),
                        help="efSearch values the engine's graphs are also searched at")
    parser.add_argument("--graph-above", type=int, default=rag_index.FLAT_LIMIT,
                        help="engine rows: a graph above this many passages (default: the "
                             "engine's own limit)")
    parser.add_argument("--baseline-limit", type=int, default=100_000,
                        help="largest size at which the list-BM25 baselines are built")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--models", type=lambda s: s.split(","), default=["minilm", "use"])
    parser.add_argument("--limit", type=int, default=None,
                        help="real vectors from the first N PIAF paragraphs only")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes, MiniLM only, one index family, no cache, no plot")
    parser.add_argument("--plot", type=lambda s: Path(s) if s else None,
                        default=ROOT / "docs" / "scale.png", help="PNG to write ('' for none)")
    parser.add_argument("--json", action="store_true", help="end with one line of JSON")
    parser.add_argument("--markdown", action="store_true", help="also print markdown tables")
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes, args.lexical_sizes, args.engine_sizes = [500, 2000], [300, 1000], [1000]
        args.graph_above, args.engine_depths = 500, [16, 64]
        args.queries, args.models, args.limit, args.plot = 20, ["minilm"], 10, None
    start = time.perf_counter()
    report = run(args)
    if args.plot:
        plot(report, args.plot)
        print(f"plot: {args.plot}")
    print(f"total {time.perf_counter() - start:.0f} s")
    if args.markdown:
        print(markdown(report))
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
