"""Calibrate the fusion weights and the abstention rule on a gold set.

Signals are computed once per question. Ranking weights are searched at random, scored by
turn@1 and evidence@1; the abstention rule is a logistic regression on the top passage's
signals, its bias then set so that at most --max-false of on-topic questions abstain. With
--folds 2 the calibration runs on one half of the questions and is scored on the other, which
tells how well it carries over to questions it never saw. One split of 124 questions moves by a
question or two with any change to the signals, so --repeats N also averages the held-out figures
over N random 2-fold splits: what a new signal must raise before it is kept.

    python bench/tune.py tests/gold.jsonl [--trials 3000] [--folds 2] [--repeats 20] [--overlap]
        [--leave-out PREFIX]

Prints held-out figures per fold, then the weights fitted on all questions, as Python to paste
into `rag.retrieve.Weights`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rag import Weights, load_engine  # noqa: E402
from rag.evaluate import evidence_spans, has_evidence, read_gold  # noqa: E402
from rag.followup import reading  # noqa: E402
from rag.retrieve import judged, query_features, signal_matrix  # noqa: E402


def features(engine, gold, with_overlap=None, leave_out=()):
    corpus = engine.index.corpus
    text = next(iter(corpus.texts.values()))
    rows = []
    for item in gold:
        searched, own = reading(item["question"], item.get("previous"))
        ids, signals, names = signal_matrix(engine, searched, with_overlap=with_overlap,
                                            every_model=True)
        kept = [i for i, n in enumerate(names) if not n.startswith(tuple(leave_out))]
        signals, names = signals[:, kept], [names[i] for i in kept]
        turns = np.array([corpus.documents[corpus.passages[i].doc].turn for i in ids])
        spans = [(corpus.passages[i].start, corpus.passages[i].end) for i in ids]
        ev = evidence_spans(text, item.get("evidence", []))
        good = np.array([has_evidence(s, ev) for s in spans]) if ev else np.zeros(len(ids), bool)
        query = query_features(engine, judged(searched, own))  # as the engine judges it
        rows.append({"signals": signals, "turns": turns, "good": good, "item": item,
                     "query": np.array(list(query.values())), "ids": ids,
                     "searched": searched})
    return rows, names, list(query)


def ranking(rows, w):
    """Under weights w: for each on-topic question, whether its top passage is in the right turn
    and whether it holds evidence; and every question's top passage signals."""
    v = w / max(w.sum(), 1e-9)
    right, good, tops = [], [], []
    for r in rows:
        s = r["signals"] @ v
        best = int(np.argmax(s))
        tops.append(np.concatenate([r["signals"][best], [s[best]], r["query"]]))
        if not r["item"]["abstain"]:
            right.append(r["turns"][best] == r["item"]["turn"])
            good.append(bool(r["good"][best]))
    return np.array(right, bool), np.array(good, bool), np.array(tops)


def objective(rows, w) -> float:
    """turn@1 + evidence@1 under weights w."""
    right, good, _ = ranking(rows, w)
    return float(right.mean() + good.mean())


def listwise_weights(rows, dim, *, temperature=20.0, l2=0.05):
    """Non-negative weights that maximise the softmax probability of the passages that hold
    the evidence (or, lacking one, that lie in the right answer): a smooth stand-in for
    turn@1 + evidence@1 that generalises better than searching the 0/1 metrics directly."""
    from scipy.optimize import minimize

    data = []
    for r in rows:
        if r["item"]["abstain"]:
            continue
        right = r["turns"] == r["item"]["turn"]
        target = (right & r["good"]) if (right & r["good"]).any() else right
        data.append((r["signals"], target))

    def loss(w):
        total, grad = 0.0, np.zeros(dim)
        for signals, target in data:
            z = temperature * (signals @ w)
            z -= z.max()
            p = np.exp(z) / np.exp(z).sum()
            mass = p[target].sum()
            total -= np.log(mass + 1e-12)
            q = np.where(target, p / (mass + 1e-12), 0.0)
            grad -= temperature * (signals.T @ (q - p))
        total = total / len(data) + l2 * float(w @ w)
        return total, grad / len(data) + 2 * l2 * w

    w0 = np.full(dim, 1.0 / dim)
    result = minimize(loss, w0, jac=True, method="L-BFGS-B", bounds=[(0, None)] * dim)
    return result.x


def search_weights(rows, dim, trials, rng, start):
    """Refine the listwise weights by random search on turn@1 + evidence@1."""
    best_w = listwise_weights(rows, dim)
    best = objective(rows, best_w)
    for _ in range(trials):
        w = np.clip(best_w + rng.normal(0, 0.05 * best_w.max(), size=dim), 0, None)
        value = objective(rows, w)
        if value > best + 1e-9:
            best_w, best = w, value
    return best_w


def fit_abstention(tops, labels, max_false):
    """Logistic regression (answers vs off-topic) whose bias keeps false abstention low."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=5000)
    model.fit(tops, labels)
    coef, bias = model.coef_[0], float(model.intercept_[0])
    margins = tops[labels] @ coef + bias
    bias -= min(0.0, float(np.quantile(margins, max_false)))  # only ever lowers abstention
    return coef, bias


def abstention_rates(tops, labels, coef, bias):
    keep = tops @ coef + bias > 0
    return float(np.mean(~keep[~labels])), float(np.mean(~keep[labels]))


def calibrate(rows, dim, trials, rng, start, max_false):
    w = search_weights(rows, dim, trials, rng, start)
    _, _, tops = ranking(rows, w)
    labels = np.array([not r["item"]["abstain"] for r in rows])
    coef, bias = fit_abstention(tops, labels, max_false)
    return w, coef, bias


def report(rows, w, coef, bias):
    """Ranking figures (turn@1, evidence@1, before abstention), abstention rates, and turn@1
    as `rag eval` counts it: a question that abstains has no top citation, so it misses."""
    right, good, tops = ranking(rows, w)
    labels = np.array([not r["item"]["abstain"] for r in rows])
    off, false = abstention_rates(tops, labels, coef, bias)
    kept = tops[labels] @ coef + bias > 0
    return {"turn@1": round(float(right.mean()), 3), "evidence@1": round(float(good.mean()), 3),
            "abstention": round(off, 3), "false_abstention": round(false, 3),
            "answered_turn@1": round(float((right & kept).mean()), 3)}


def halves(rows, repeats):
    """(train, test, rng) for each half of `repeats` seeded random splits in two: the same
    splits for every script that scores a half by what was fitted on the other."""
    for seed in range(repeats):
        order = np.random.default_rng(100 + seed).permutation(len(rows))
        rng = np.random.default_rng(seed)
        for fold in range(2):
            train = [rows[i] for j, i in enumerate(order) if j % 2 != fold]
            test = [rows[i] for j, i in enumerate(order) if j % 2 == fold]
            yield train, test, rng


def repeated_halves(rows, dim, trials, max_false, repeats):
    """Mean held-out figures over `repeats` random splits in two halves, each half scored by
    the calibration fitted on the other."""
    scores = [report(test, *calibrate(train, dim, trials, rng, None, max_false))
              for train, test, rng in halves(rows, repeats)]
    return {m: round(float(np.mean([s[m] for s in scores])), 4) for m in scores[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("gold")
    parser.add_argument("--trials", type=int, default=3000)
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--max-false", type=float, default=0.04)
    parser.add_argument("--repeats", type=int, default=0)
    parser.add_argument("--index", default="index")
    parser.add_argument("--overlap", action="store_true",
                        help="fit the word-for-word overlap signals too (rag/overlap.py)")
    parser.add_argument("--leave-out", action="append", default=[], metavar="PREFIX",
                        help="fit without the signals named PREFIX... (e.g. e5.), to compare")
    args = parser.parse_args()
    engine = load_engine(args.index)
    rows, names, query_names = features(engine, read_gold(args.gold), args.overlap or None,
                                        args.leave_out)
    start = Weights().vector(names)
    rng = np.random.default_rng(0)
    for fold in range(args.folds if args.folds > 1 else 0):
        train = [r for i, r in enumerate(rows) if i % args.folds != fold]
        test = [r for i, r in enumerate(rows) if i % args.folds == fold]
        w, coef, bias = calibrate(train, len(names), args.trials, rng, start, args.max_false)
        print(f"fold {fold} held-out:", json.dumps(report(test, w, coef, bias)))
    if args.repeats:
        mean = repeated_halves(rows, len(names), args.trials, args.max_false, args.repeats)
        print(f"mean of {args.repeats} random splits, held-out:", json.dumps(mean))
    w, coef, bias = calibrate(rows, len(names), args.trials, rng, start, args.max_false)
    print("all (in-sample):", json.dumps(report(rows, w, coef, bias)))
    print("rank=" + repr(tuple((n, round(float(x), 3)) for n, x in zip(names, w, strict=True))))
    abstain_names = names + ["fused"] + query_names
    print("abstain=" + repr(tuple((n, round(float(x), 3))
                                  for n, x in zip(abstain_names, coef, strict=True))))
    print(f"abstain_bias={bias:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
