"""How well the abstention signals tell answered from unanswered questions in a gold file, the
rule fitted on another (by default the public set), and whether joining the file to the fit
helps.

    python bench/separability.py tests/gold-near.jsonl [--fit tests/gold.jsonl]
                                 [--trials 500] [--splits 10] [--json]

Prints the area under the ROC curve (answered against off-topic) of each signal of the top
passage alone, and of logistic rules fitted on the fit file over every signal, over the
question features and the fused score, and over the multilingual signals with those, at three
regularisations, beside the same rule's area on the fit file itself; then the mean abstention
rates on one half of the file when the other half joins the fit (`bench/tune.py`'s procedure),
over --splits random halves. The last line with --json holds all of it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import tune  # noqa: E402

from rag import load_engine  # noqa: E402
from rag.evaluate import read_gold  # noqa: E402

STRENGTHS = (0.01, 0.1, 1.0)  # logistic regression's C: smaller is more regularised


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return round(float(roc_auc_score(labels, scores)), 3)


def rules(names: list[str]) -> dict[str, list[int]]:
    """Feature subsets of the top passage's row (its signals, the fused score, the question's
    features), by name."""
    question = [i for i, n in enumerate(names) if n == "fused" or n.startswith("query.")]
    multi = [i for i, n in enumerate(names) if n.startswith("multilingual.")]
    return {"every signal": list(range(len(names))), "question features + fused": question,
            "multilingual + question features + fused": multi + question}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gold")
    parser.add_argument("--fit", default="tests/gold.jsonl")
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--splits", type=int, default=10)
    parser.add_argument("--max-false", type=float, default=0.04)
    parser.add_argument("--index", default="index")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from sklearn.linear_model import LogisticRegression

    engine = load_engine(args.index)
    fit, names, query_names = tune.features(engine, read_gold(args.fit))
    rows, _, _ = tune.features(engine, read_gold(args.gold))
    top_names = names + ["fused"] + query_names
    weights = tune.search_weights(fit, len(names), args.trials, np.random.default_rng(0), None)
    _, _, fit_tops = tune.ranking(fit, weights)
    _, _, tops = tune.ranking(rows, weights)
    fit_labels = np.array([not r["item"]["abstain"] for r in fit])
    labels = np.array([not r["item"]["abstain"] for r in rows])

    report = {"gold": args.gold, "fit": args.fit,
              "signals": {n: auc(labels, tops[:, i]) for i, n in enumerate(top_names)},
              "rules": []}
    print(f"{args.gold}: {labels.sum()} answered, {(~labels).sum()} off-topic; "
          f"rules fitted on {args.fit}")
    print(f"{'rule':45} {'C':>5} {'AUC here':>9} {'AUC on fit':>11}")
    for label, cols in rules(top_names).items():
        for strength in STRENGTHS:
            model = LogisticRegression(C=strength, class_weight="balanced", max_iter=5000)
            model.fit(fit_tops[:, cols], fit_labels)
            here = auc(labels, tops[:, cols] @ model.coef_[0])
            there = auc(fit_labels, fit_tops[:, cols] @ model.coef_[0])
            report["rules"].append({"features": label, "C": strength, "auc": here,
                                    "auc_fit": there})
            print(f"{label:45} {strength:>5} {here:>9.3f} {there:>11.3f}")
    best = max(report["signals"], key=report["signals"].get)
    print(f"best single signal here: {best} (AUC {report['signals'][best]:.3f})")

    halves = []
    for seed in range(args.splits):
        order = np.random.default_rng(seed).permutation(len(rows))
        for fold in range(2):
            joined = [rows[i] for j, i in enumerate(order) if j % 2 != fold]
            scored = [rows[i] for j, i in enumerate(order) if j % 2 == fold]
            calibration = tune.calibrate(fit + joined, len(names), args.trials,
                                         np.random.default_rng(seed), None, args.max_false)
            halves.append(tune.report(scored, *calibration))
    report["half_joined"] = {m: round(float(np.mean([h[m] for h in halves])), 3)
                             for m in halves[0]}
    print("half of the file joined to the fit, the other half scored (mean):",
          json.dumps(report["half_joined"]))
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
