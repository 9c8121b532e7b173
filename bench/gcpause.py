"""How long the garbage collector's full pass holds a loaded server, before and after
`rag.server.settle_heap`.

A full pass walks every object the interpreter tracks, holding the interpreter lock: no
question moves on while it runs. This builds the app as `rag serve` does (engine, API and
Gradio UI), answers the gold questions once so every path is warm, then times full passes
(`gc.collect()`) with the heap as it is (the baseline), calls `settle_heap()` as `rag serve`
does once it has loaded, answers the questions again and times full passes once more, in the
same process.

    python bench/gcpause.py [--repeat 7] [--smoke] [--json]
"""

from __future__ import annotations

import argparse
import gc
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
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from rag.answer import ask_many  # noqa: E402
from rag.engine import load_engine  # noqa: E402
from rag.evaluate import read_gold  # noqa: E402
from rag.server import create_app, settle_heap  # noqa: E402


def full_passes(repeat: int) -> dict:
    """Median and worst milliseconds of `repeat` full collections, and the objects walked."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        gc.collect()
        times.append((time.perf_counter() - start) * 1e3)
    return {"median_ms": round(statistics.median(times), 2), "max_ms": round(max(times), 2),
            "tracked": len(gc.get_objects())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="full passes timed each side (7)")
    parser.add_argument("--index", type=Path, default=ROOT / "index")
    parser.add_argument("--smoke", action="store_true", help="8 questions, 2 passes each side")
    parser.add_argument("--json", action="store_true", help="end with one line of JSON")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be positive")
    questions = [g["question"] for g in read_gold(ROOT / "tests" / "gold.jsonl")]
    if args.smoke:
        questions, args.repeat = questions[:8], 2
    gc.unfreeze()
    engine = load_engine(args.index, root=ROOT)
    create_app(engine)
    ask_many(engine, questions)
    before = full_passes(args.repeat)
    settle_heap()
    ask_many(engine, questions)
    after = full_passes(args.repeat)
    after["frozen"] = gc.get_freeze_count()
    ratio = round(after["median_ms"] / before["median_ms"], 4) if before["median_ms"] else None
    print(f"full garbage-collector passes over the loaded server, {args.repeat} each side")
    print(f"{'':24}{'objects':>10}{'median ms':>11}{'max ms':>9}")
    print(f"{'as loaded (baseline)':24}{before['tracked']:10d}{before['median_ms']:11.2f}"
          f"{before['max_ms']:9.2f}")
    print(f"{'after settle_heap()':24}{after['tracked']:10d}{after['median_ms']:11.2f}"
          f"{after['max_ms']:9.2f}")
    print(f"after / baseline: x{ratio}; {after['frozen']} objects frozen")
    if args.json:
        print(json.dumps({"repeat": args.repeat, "baseline": before, "settled": after,
                          "ratio": ratio}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
