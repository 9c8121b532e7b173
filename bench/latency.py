"""Warm answer latency: a full `ask` against the plain dense baseline, in the same process.

The baseline is the tutorial RAG stack over the same passages: the same sentence-transformers
model encodes the question, and an exact FAISS inner-product search finds the k nearest. Ours
does more (three encoders, BM25 over four scopes, fusion, the abstention rule, the quotes), so
the ratio says what that costs. The two alternate question by question, the order flipping
each time, so a burst of noise on this shared machine lands on both.

    python bench/latency.py [--repeat 10] [--runs 3] [--limit N] [--smoke] [--json]

Each run times every gold question `--repeat` times for each side; the figures are the
medians over `--runs` runs of each run's percentiles. `--json` ends the output with one line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The two stacks alternate in one process: torch's idle OpenMP threads would otherwise spin
# for a while after each baseline call and take a core from whatever runs next. Passive
# waiting leaves the baseline's own time as it was (docs/performance.md).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

GOLD = ROOT / "tests" / "gold.jsonl"
PERCENTILES = (50, 95, 99)


def gold_questions(path: Path = GOLD) -> list[dict]:
    """The public gold questions, follow-ups with their previous question."""
    items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
             if line.strip()]
    return [{"question": i["question"], "previous": i.get("previous")} for i in items]


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile in milliseconds: a time some call really took."""
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1] * 1000


def summary(times: list[float]) -> dict:
    ordered = sorted(times)
    out = {f"p{p}_ms": round(percentile(ordered, p), 3) for p in PERCENTILES}
    out["mean_ms"] = round(1000 * statistics.fmean(ordered), 3)
    out["calls"] = len(ordered)
    return out


def ours(index_dir: Path, k: int) -> Callable[[dict], object]:
    """A full `ask` (retrieval and answer) through the library, as the CLI and server call it."""
    from rag.answer import ask
    from rag.engine import load_engine

    engine = load_engine(index_dir, root=index_dir.resolve().parent)
    ours.engine = engine
    return lambda item: ask(engine, item["question"], k=k, previous=item["previous"])


def baseline(engine, k: int) -> Callable[[dict], object]:
    """The plain dense stack: MiniLM encodes the question, exact FAISS search over the passages.

    The passage vectors are the index's own MiniLM vectors, so both sides search the same text.
    """
    import faiss
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from rag.embed import DEFAULT_MODEL, resolve_model

    model = SentenceTransformer(resolve_model(DEFAULT_MODEL), device="cpu")
    vectors = np.ascontiguousarray(engine.index.vectors[DEFAULT_MODEL].passages,
                                   dtype=np.float32)
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)

    def answer(item: dict):
        query = model.encode([item["question"]], normalize_embeddings=True,
                             convert_to_numpy=True, show_progress_bar=False)
        return flat.search(query, k)

    return answer


def timed(fn: Callable[[dict], object], item: dict) -> float:
    started = time.perf_counter()
    fn(item)
    return time.perf_counter() - started


def one_run(sides: dict[str, Callable], items: list[dict], repeat: int) -> dict[str, dict]:
    """Every item `repeat` times on each side, alternating which side goes first."""
    times: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    turn = 0
    for _ in range(repeat):
        for item in items:
            order = names if turn % 2 == 0 else names[::-1]
            for name in order:
                times[name].append(timed(sides[name], item))
            turn += 1
    return {name: summary(t) for name, t in times.items()}


def ratios(run: dict[str, dict]) -> dict[str, float]:
    return {key: round(run["ours"][key] / run["baseline"][key], 3)
            for key in (*(f"p{p}_ms" for p in PERCENTILES), "mean_ms")}


def median_of(runs: list[dict], side: str) -> dict:
    keys = runs[0][side].keys()
    return {key: round(statistics.median(r[side][key] for r in runs), 3) for key in keys}


def measure(index_dir: Path, *, repeat: int, runs: int, limit: int | None, k: int = 3) -> dict:
    items = gold_questions()[:limit]
    started = time.perf_counter()
    sides = {"ours": ours(index_dir, k)}
    sides["baseline"] = baseline(ours.engine, k)
    loaded = time.perf_counter() - started
    for side in sides.values():  # warm-up: first calls allocate and fill caches
        for item in items:
            side(item)
    results = []
    for _ in range(runs):
        run = one_run(sides, items, repeat)
        run["ratio"] = ratios(run)
        results.append(run)
    return {"questions": len(items), "repeat": repeat, "runs": runs, "k": k,
            "load_seconds": round(loaded, 2),
            "ours": median_of(results, "ours"), "baseline": median_of(results, "baseline"),
            "ratio": median_of(results, "ratio"),
            "per_run": [{"ours_p50_ms": r["ours"]["p50_ms"],
                         "baseline_p50_ms": r["baseline"]["p50_ms"],
                         "ratio_p50": r["ratio"]["p50_ms"]} for r in results]}


def show(report: dict) -> str:
    rows = [f"warm latency: {report['questions']} gold questions x{report['repeat']}, "
            f"{report['runs']} run(s), k={report['k']}; medians over runs",
            f"{'':<34}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'mean ms':>9}"]
    for name, key in (("ours: full ask", "ours"),
                      ("baseline: MiniLM + FAISS FlatIP", "baseline"), ("ratio", "ratio")):
        s = report[key]
        rows.append(f"{name:<34}{s['p50_ms']:>9}{s['p95_ms']:>9}{s['p99_ms']:>9}"
                    f"{s['mean_ms']:>9}")
    rows.append("per run, p50 ours / baseline (ratio): " + "; ".join(
        f"{r['ours_p50_ms']} / {r['baseline_p50_ms']} (x{r['ratio_p50']})"
        for r in report["per_run"]))
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10, help="times each question (10)")
    parser.add_argument("--runs", type=int, default=3, help="runs to take medians over (3)")
    parser.add_argument("--limit", type=int, help="only the first N gold questions")
    parser.add_argument("--index", type=Path, default=ROOT / "index")
    parser.add_argument("--smoke", action="store_true",
                        help="one run, once over 5 questions: checks the script, not the figures")
    parser.add_argument("--json", action="store_true", help="end with one line of JSON")
    args = parser.parse_args(argv)
    if args.smoke:
        args.repeat, args.runs, args.limit = 1, 1, 5
    if args.repeat < 1 or args.runs < 1:
        parser.error("--repeat and --runs must be at least 1")
    report = measure(args.index, repeat=args.repeat, runs=args.runs, limit=args.limit)
    print(show(report), flush=True)
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
