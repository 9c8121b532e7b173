"""Questions asked in a conversation: does the question before change the answer?

    python bench/conversation.py [--json] [--seed N] [GOLD.jsonl ...]

In a chat, every question but the first comes after another, and the engine reads a short or
elliptic one as a follow-up of it. A question that does not follow up should get the answer
it gets asked alone. Each question of the gold files (their own follow-ups left out) is
asked twice: alone, and after a question drawn at random (seeded) among the files' on-topic
questions in the same language, about another answer for an on-topic one. Counted: how many
on-topic questions get the right answer first, and how many off-topic ones are answered at
all, each way, and how many were read as follow-ups.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from rag import ask, load_engine  # noqa: E402
from rag.evaluate import read_gold  # noqa: E402
from rag.followup import is_follow_up  # noqa: E402

GOLD = [ROOT / "tests" / name for name in ("gold.jsonl", "gold-unseen.jsonl", "gold-near.jsonl")]


def right(answer, item: dict) -> bool:
    if item["abstain"]:
        return answer.abstained
    return not answer.abstained and answer.citations[0].answer == item["turn"]


def measure(engine, items: list[dict], *, seed: int = 0) -> dict:
    rng = random.Random(seed)
    on = [g for g in items if not g["abstain"]]
    rows = {"on-topic": {"questions": 0, "follow_ups": 0, "right_alone": 0, "right_after": 0},
            "off-topic": {"questions": 0, "follow_ups": 0, "answered_alone": 0,
                          "answered_after": 0}}
    for item in items:
        before = [g for g in on if g["lang"] == item["lang"]
                  and (item["abstain"] or g["turn"] != item["turn"])]
        if not before:
            continue
        previous = rng.choice(before)["question"]
        alone = ask(engine, item["question"])
        after = ask(engine, item["question"], previous=previous)
        row = rows["off-topic" if item["abstain"] else "on-topic"]
        row["questions"] += 1
        row["follow_ups"] += is_follow_up(item["question"])
        if item["abstain"]:
            row["answered_alone"] += not alone.abstained
            row["answered_after"] += not after.abstained
        else:
            row["right_alone"] += right(alone, item)
            row["right_after"] += right(after, item)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gold", nargs="*", type=Path, default=GOLD)
    parser.add_argument("--index", type=Path, default=ROOT / "index")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="end with one line of JSON")
    args = parser.parse_args(argv)
    engine = load_engine(args.index, root=args.index.parent)
    items = [g for path in args.gold for g in read_gold(path) if not g.get("previous")]
    rows = measure(engine, items, seed=args.seed)
    on, off = rows["on-topic"], rows["off-topic"]
    print(f"{'':20}{'questions':>10}{'follow-ups':>12}{'alone':>8}{'after another':>15}")
    for label, row, alone, after in (("on-topic, right", on, "right_alone", "right_after"),
                                     ("off-topic, answered", off, "answered_alone",
                                      "answered_after")):
        print(f"{label:20}{row['questions']:10d}{row['follow_ups']:12d}{row[alone]:8d}"
              f"{row[after]:15d}")
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
