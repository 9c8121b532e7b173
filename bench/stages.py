"""Where a batch of questions spends its CPU time: each encoder, then ranking and the answer.

The server's worker answers the questions waiting at once with `rag.ask_many`: every model
embeds the batch, then each question is ranked and its answer composed. This times those
stages apart, in CPU time of the whole process (all threads), over the gold questions in
batches of `--batch`, alternating the stages `--repeat` times so noise lands on all of them;
the whole `ask_many` is timed beside them as the baseline they should add up to. The stage
"embed new words" is what term coverage costs for questions whose words were never seen; a
warm server keeps their vectors, so the whole `ask_many` here (warm) does not include it; nor
"read with the transcripts' spelling", which it keeps for recent questions.

    python bench/stages.py [--batch 32] [--repeat 5] [--smoke] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from rag.answer import Request, _compose, ask_many  # noqa: E402
from rag.embed import embed_questions  # noqa: E402
from rag.engine import load_engine  # noqa: E402
from rag.evaluate import read_gold  # noqa: E402
from rag.respell import respell  # noqa: E402
from rag.retrieve import embed_queries, search  # noqa: E402


def batches(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def cpu_ms(work) -> tuple[float, float]:
    """CPU and wall milliseconds of one call."""
    cpu, wall = time.process_time(), time.perf_counter()
    work()
    return (time.process_time() - cpu) * 1e3, (time.perf_counter() - wall) * 1e3


def measure(engine, questions: list[str], *, batch: int, repeat: int) -> dict:
    """Per-question CPU and wall milliseconds of each stage, medians over the repeats."""
    groups = batches(questions, batch)
    vectors = [embed_queries(engine, g) for g in groups]

    def embed_with(name):
        return lambda: [embed_questions(engine.embedders[name], g) for g in groups]

    def rank():
        for g, vecs in zip(groups, vectors, strict=True):
            for q, v in zip(g, vecs, strict=True):
                _compose(q, q, search(engine, q, k=3, qvecs=v), 3, engine.weights)

    stages = {f"embed {name}": embed_with(name) for name in engine.embedders}
    coverage = engine._coverage
    if coverage.embedder is not None and len(coverage.vectors):
        # Term coverage's words, as if none had been seen: the server embeds them with the
        # questions in one call, and keeps their vectors for the next questions.
        stages["embed new words (term coverage)"] = lambda: [
            coverage.embedder.embed_batch(coverage.unknown(g)) for g in groups]
    # Each question read with the transcripts' spelling, as if never seen (the engine keeps
    # the readings of recent questions, so the whole `ask_many` here, warm, does not pay it).
    stages["read with the transcripts' spelling"] = lambda: [
        respell(q, engine._spelling) for g in groups for q in g]
    stages["rank and compose"] = rank
    stages["ask_many (whole)"] = lambda: [ask_many(engine, [Request(q) for q in g])
                                          for g in groups]
    for work in stages.values():  # warm every path once
        work()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in stages}
    for _ in range(repeat):
        for name, work in stages.items():
            times[name].append(cpu_ms(work))
    n = len(questions)
    return {name: {"cpu_ms": round(statistics.median(c for c, _ in t) / n, 3),
                   "wall_ms": round(statistics.median(w for _, w in t) / n, 3)}
            for name, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32, help="questions per batch (32)")
    parser.add_argument("--repeat", type=int, default=5, help="runs to take medians over (5)")
    parser.add_argument("--index", type=Path, default=ROOT / "index")
    parser.add_argument("--smoke", action="store_true", help="8 questions, 2 runs")
    parser.add_argument("--json", action="store_true", help="end with one line of JSON")
    args = parser.parse_args(argv)
    if args.batch < 1 or args.repeat < 1:
        parser.error("--batch and --repeat must be positive")
    questions = [g["question"] for g in read_gold(ROOT / "tests" / "gold.jsonl")]
    if args.smoke:
        questions, args.repeat = questions[:8], 2
    engine = load_engine(args.index, root=ROOT)
    figures = measure(engine, questions, batch=args.batch, repeat=args.repeat)
    whole = figures["ask_many (whole)"]["cpu_ms"]
    print(f"{len(questions)} questions in batches of {args.batch}, medians of {args.repeat} "
          "runs, per question")
    print(f"{'stage':34}{'CPU ms':>8}{'wall ms':>9}{'CPU / whole':>13}")
    for name, f in figures.items():
        share = f["cpu_ms"] / whole if whole else 0.0
        print(f"{name:34}{f['cpu_ms']:8.2f}{f['wall_ms']:9.2f}{share:13.2f}")
    if args.json:
        print(json.dumps({"questions": len(questions), "batch": args.batch,
                          "repeat": args.repeat, "stages": figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
