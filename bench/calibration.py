"""How far to trust an answer: the abstention rule's margin, and the best answer's lead,
read as a probability.

    python bench/calibration.py [--repeats 20] [--trials 2000] [--json]

The abstention rule answers when its margin on the top passage is positive; how far above
zero it lies says how sure it is that the interview answers. How far the best answer's fused
score lies above the next answer's (`rag.retrieve.lead`) says how sure the ranking is of
which answer does. Fitted on the public gold set, the rule overstates that set's margins and
the weights its leads, so each public question's margin and lead are taken under a
calibration fitted without it (`bench/tune.py`'s random halves), and a logistic curve,
P(the top passage comes from the answer asked about | margin, lead when answered), is
fitted to those out-of-fold values: the curve `rag.retrieve.Weights.calibration` holds.
The files no fit reads (unseen questions, unseen follow-ups, off-topic questions in the
interview's own terms) then score it: Brier score and log loss of the curve against a curve
on the margin alone, the public set's base rate (one probability for every question) and
the abstention rule's own logistic reading of its margin, with a reliability table
(questions grouped by the probability given: how many were right).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import tune  # noqa: E402

from rag import load_engine  # noqa: E402
from rag.evaluate import read_gold  # noqa: E402
from rag.followup import reading  # noqa: E402
from rag.retrieve import certainty, lead, search  # noqa: E402

FIT = ROOT / "tests" / "gold.jsonl"
UNSEEN = [ROOT / "tests" / name for name in
          ("gold-unseen.jsonl", "gold-followups-unseen.jsonl", "gold-near.jsonl")]
BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def out_of_fold(rows, dim: int, *, trials: int, repeats: int, max_false: float):
    """(margin, lead, right) for every public question under each calibration fitted
    without it."""
    margins, leads, right = [], [], []
    for train, test, rng in tune.halves(rows, repeats):
        w, coef, bias = tune.calibrate(train, dim, trials, rng, None, max_false)
        v = w / max(w.sum(), 1e-9)
        for r in test:
            s = r["signals"] @ v
            best = int(np.argmax(s))
            top = np.concatenate([r["signals"][best], [s[best]], r["query"]])
            margins.append(float(top @ coef + bias))
            leads.append(lead(r["turns"], s))
            right.append(not r["item"]["abstain"] and r["turns"][best] == r["item"]["turn"])
    return np.array(margins), np.array(leads), np.array(right, bool)


def fit_curve(margins: np.ndarray, leads: np.ndarray | None,
              right: np.ndarray) -> tuple[float, ...]:
    """(margin slope, lead slope, intercept) of P(right) = sigmoid(margin slope * margin +
    lead slope * lead if answered + intercept); without leads, (slope, intercept)."""
    from sklearn.linear_model import LogisticRegression

    # the lead counts where the rule answers, as `rag.retrieve.certainty` reads it
    x = margins[:, None] if leads is None else np.c_[margins, leads * (margins > 0)]
    model = LogisticRegression(C=1e4, max_iter=1000).fit(x, right)
    return (*(float(c) for c in model.coef_[0]), float(model.intercept_[0]))


def engine_margins(engine, items: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The shipped engine's margin on each question's top passage, its answer's lead, and
    whether that passage comes from the answer asked about."""
    margins, leads, right = [], [], []
    for item in items:
        searched, own = reading(item["question"], item.get("previous"))
        top = search(engine, searched, k=1, own=own)[0]
        margins.append(top.confidence)
        leads.append(top.lead)
        right.append(not item["abstain"] and top.document.turn == item["turn"])
    return np.array(margins), np.array(leads), np.array(right, bool)


def scores(p: np.ndarray, right: np.ndarray) -> dict:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return {"brier": round(float(np.mean((p - right) ** 2)), 4),
            "log_loss": round(float(-np.mean(np.where(right, np.log(p), np.log(1 - p)))), 4)}


def reliability(p: np.ndarray, right: np.ndarray) -> list[dict]:
    rows = []
    for lo, hi in zip(BINS, BINS[1:], strict=False):
        inside = (p >= lo) & ((p < hi) if hi < 1 else (p <= hi))
        if inside.any():
            rows.append({"from": lo, "to": hi, "questions": int(inside.sum()),
                         "mean_probability": round(float(p[inside].mean()), 3),
                         "right": round(float(right[inside].mean()), 3)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, default=ROOT / "index")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--max-false", type=float, default=0.04)
    parser.add_argument("--unseen", nargs="*", type=Path, default=UNSEEN)
    parser.add_argument("--json", action="store_true", help="end with one line of JSON")
    args = parser.parse_args(argv)
    engine = load_engine(args.index, root=args.index.parent)
    rows, names, _ = tune.features(engine, read_gold(FIT))
    margins, leads, right = out_of_fold(rows, len(names), trials=args.trials,
                                        repeats=args.repeats, max_false=args.max_false)
    curve = fit_curve(margins, leads, right)
    alone = fit_curve(margins, None, right)
    print(f"fitted on {len(right)} out-of-fold margins and leads of {len(rows)} public "
          f"questions: calibration=({', '.join(f'{c:.3f}' for c in curve)}); shipped "
          f"{engine.weights.calibration}; on the margin alone ({alone[0]:.3f}, {alone[1]:.3f})")
    items = [g for path in args.unseen for g in read_gold(path)]
    m, leads, ok = engine_margins(engine, items)

    def probabilities(weights):
        return np.array([certainty(x, weights, y) for x, y in zip(m, leads, strict=True)])

    shipped = probabilities(engine.weights)
    fitted = probabilities(dataclasses.replace(engine.weights, calibration=curve))
    margin_only = 1 / (1 + np.exp(-(alone[0] * m + alone[1])))
    base = np.full(len(ok), right.mean())
    raw = 1 / (1 + np.exp(-m))
    report = {"questions": len(ok), "right": int(ok.sum()),
              "calibration": [round(c, 3) for c in curve],
              "shipped": scores(shipped, ok), "fitted_now": scores(fitted, ok),
              "margin_only": scores(margin_only, ok),
              "base_rate": scores(base, ok), "margin_sigmoid": scores(raw, ok),
              "reliability": reliability(shipped, ok)}
    print(f"{len(ok)} questions no fit reads ({', '.join(p.name for p in args.unseen)}), "
          f"{ok.sum()} with the right answer on top")
    print(f"{'probability':28}{'Brier':>8}{'log loss':>10}")
    for label, key in (("shipped curve", "shipped"), ("curve fitted now", "fitted_now"),
                       ("curve on the margin alone", "margin_only"),
                       (f"base rate ({right.mean():.2f})", "base_rate"),
                       ("sigmoid of the margin", "margin_sigmoid")):
        print(f"{label:28}{report[key]['brier']:8.4f}{report[key]['log_loss']:10.4f}")
    print(f"{'given':>12}{'questions':>11}{'mean given':>12}{'right':>8}")
    for row in report["reliability"]:
        print(f"{row['from']:5.1f}–{row['to']:<5.1f} {row['questions']:10d}"
              f"{row['mean_probability']:12.3f}{row['right']:8.3f}")
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
