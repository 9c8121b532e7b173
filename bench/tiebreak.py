"""multilingual-e5-small as the judge of close calls (`Weights.tiebreak`), against the engine
without it, in one run.

    python bench/tiebreak.py [--tiebreak T] [--repeats 20] [--trials 3000] [--rounds 3]
        [--smoke] [--json]

`--tiebreak` defaults to the shipped weights' own.

The index is built with e5 (`rag build --e5`) in a scratch folder. Three comparisons:

- held-out: over `--repeats` random halves of the public gold set (`bench/tune.py`'s), the
  ranking weights are fitted on one half and score the other, with and without the tie-break
  (turn@1 and evidence@1 of the top passage, before abstention). The public set's own figures
  are in-sample for the shipped weights, which flatters whatever they chose.
- every gold file through `rag.evaluate` with the shipped weights, with and without it: the
  files after the public one were written after the fit, and no fit reads them.
- a warm `ask` for each public question, the two engines alternating question by question:
  the ratio of their median times, and the share of questions close enough to pay an e5 pass.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import tune  # noqa: E402

from rag import IndexSettings, Weights, ask, build, load_engine  # noqa: E402
from rag.evaluate import evaluate, read_gold  # noqa: E402
from rag.retrieve import close_call, fuse, settle_close_call, signal_matrix  # noqa: E402

GOLD = ["gold.jsonl", "gold-unseen.jsonl", "gold-unseen-2.jsonl", "gold-unseen-3.jsonl",
        "gold-near.jsonl",
        "gold-followups.jsonl", "gold-followups-unseen.jsonl"]
METRICS = ("turn@1", "evidence@1", "abstention", "false_abstention", "brier")


def scratch_index(folder: Path) -> Path:
    """The bundled transcripts indexed with e5 beside the two default encoders."""
    shutil.copytree(ROOT / "data", folder / "data")
    build(folder / "index", root=folder, settings=IndexSettings(e5=True))
    return folder


def held_out(engine, judge, gold, *, repeats: int, trials: int) -> dict:
    """Mean held-out turn@1 / evidence@1 without and with the tie-break: weights fitted on
    one half (without e5's signals, as the shipped ones are), scored on the other."""
    rows, names, _ = tune.features(engine, gold, None, ["e5."])
    totals = {"without": [], "with": []}
    for train, test, rng in tune.halves(rows, repeats):
        w, _, _ = tune.calibrate(train, len(names), trials, rng, None, 0.04)
        v = w / max(w.sum(), 1e-9)
        for side, settle in (("without", False), ("with", True)):
            right, good = [], []
            for r in test:
                if r["item"]["abstain"]:
                    continue
                scores = r["signals"] @ v
                if settle:
                    scores = settle_close_call(judge, r["searched"], r["ids"], scores)
                best = int(np.argmax(scores))
                right.append(r["turns"][best] == r["item"]["turn"])
                good.append(bool(r["good"][best]))
            totals[side].append((np.mean(right), np.mean(good)))
    return {side: {"turn@1": round(float(np.mean([t for t, _ in v])), 4),
                   "evidence@1": round(float(np.mean([g for _, g in v])), 4)}
            for side, v in totals.items()}


def close_calls(engine, gold) -> float:
    """The share of questions whose best two answers lie within the tie-break: those that
    pay an e5 pass."""
    close = 0
    for item in gold:
        ids, signals, names = signal_matrix(engine, item["question"])
        close += close_call(engine, ids, fuse(signals, names, engine.weights)) is not None
    return close / len(gold)


def timing(plain, judged, questions, rounds: int) -> dict:
    """Median and 95th-percentile warm `ask` time of each engine, alternating question by
    question (the first ask of each question warms its caches and is not timed)."""
    times = {"without": [], "with": []}
    for q in questions:
        ask(plain, q, k=3), ask(judged, q, k=3)
    for r in range(rounds):
        for i, q in enumerate(questions):
            pair = [("without", plain), ("with", judged)]
            for side, engine in (pair if (i + r) % 2 == 0 else pair[::-1]):
                start = time.perf_counter()
                ask(engine, q, k=3)
                times[side].append(time.perf_counter() - start)
    median = {side: statistics.median(v) for side, v in times.items()}
    p95 = {side: float(np.percentile(v, 95)) for side, v in times.items()}
    return {"median_ms": {s: round(m * 1000, 2) for s, m in median.items()},
            "p95_ms": {s: round(m * 1000, 2) for s, m in p95.items()},
            "ratio": round(median["with"] / median["without"], 3),
            "p95_ratio": round(p95["with"] / p95["without"], 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiebreak", type=float, default=Weights().tiebreak)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--trials", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true",
                        help="a quick pass: one split, a quarter of the questions")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.repeats, args.trials, args.rounds = 1, 200, 1
    report = {"tiebreak": args.tiebreak}
    with tempfile.TemporaryDirectory() as tmp:
        root = scratch_index(Path(tmp))
        plain = load_engine(root / "index", root=root,
                            weights=dataclasses.replace(Weights(), tiebreak=0.0))
        judged = load_engine(root / "index", root=root,
                             weights=dataclasses.replace(Weights(), tiebreak=args.tiebreak))
        public = read_gold(ROOT / "tests" / GOLD[0])
        if args.smoke:
            public = public[::4]
        report["held_out"] = held_out(plain, judged, public, repeats=args.repeats,
                                      trials=args.trials)
        report["files"] = {}
        for name in GOLD[:1] if args.smoke else GOLD:
            gold = read_gold(ROOT / "tests" / name)
            report["files"][name] = {
                side: {m: evaluate(engine, gold)["all"][m] for m in METRICS}
                for side, engine in (("without", plain), ("with", judged))}
        report["close_calls"] = round(close_calls(judged, public), 3)
        report["timing"] = timing(plain, judged, [q["question"] for q in public], args.rounds)
    print(f"tie-break {args.tiebreak}: held-out over {args.repeats} random halves")
    for side, figures in report["held_out"].items():
        print(f"  {side:8s}", "  ".join(f"{m} {v:.4f}" for m, v in figures.items()))
    print("gold files, shipped weights (without → with)")
    for name, sides in report["files"].items():
        print(f"  {name:28s}", "  ".join(
            f"{m} {sides['without'][m]:.3f}→{sides['with'][m]:.3f}" for m in METRICS))
    print(f"close calls (an e5 pass): {report['close_calls']:.0%} of the public questions")
    t = report["timing"]
    print(f"warm ask, median: {t['median_ms']['without']} ms without, "
          f"{t['median_ms']['with']} ms with (ratio {t['ratio']}); 95th percentile: "
          f"{t['p95_ms']['without']} and {t['p95_ms']['with']} ms (ratio {t['p95_ratio']})")
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
