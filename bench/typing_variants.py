"""The same questions typed other ways: does the engine still give the answer it gives them
typed normally, and is it still right?

    python bench/typing_variants.py [--json] [GOLD.jsonl ...]

Each gold question (follow-ups left out) is asked as written, in lower case, in capitals,
without accents, with a phone's apostrophes (’), with its accents decomposed (as some
keyboards and systems send them), and with a slip of the keyboard: two letters swapped in the
middle of its longest word. For each way of typing: how many questions get the right
answer (the expected answer number for the top citation, or an abstention where expected),
and how many get the same top answer, or abstention, as typed normally.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from rag import ask, load_engine  # noqa: E402
from rag.evaluate import read_gold  # noqa: E402

GOLD = [ROOT / "tests" / name for name in ("gold.jsonl", "gold-unseen.jsonl", "gold-near.jsonl")]


def _without_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text)
                   if not unicodedata.combining(c))


def _slip(text: str) -> str:
    words = re.findall(r"[^\W\d_]{5,}", text)
    if not words:
        return text
    word = max(words, key=len)
    i = len(word) // 2
    return text.replace(word, word[:i - 1] + word[i] + word[i - 1] + word[i + 1:], 1)


VARIANTS = {
    "as written": lambda q: q,
    "lower case": str.lower,
    "capitals": str.upper,
    "no accents": _without_accents,
    "phone apostrophes": lambda q: q.replace("'", "\u2019"),
    "decomposed accents": lambda q: unicodedata.normalize("NFD", q),
    "a slip": _slip,
}


def outcome(answer) -> int | None:
    """The top citation's answer number, or None for an abstention."""
    return None if answer.abstained or not answer.citations else answer.citations[0].answer


def measure(engine, path: Path) -> dict:
    items = [g for g in read_gold(path) if not g.get("previous")]
    typed = [outcome(ask(engine, g["question"])) for g in items]
    rows = {}
    for name, change in VARIANTS.items():
        got = [outcome(ask(engine, change(g["question"]))) for g in items]
        expected = [None if g["abstain"] else g["turn"] for g in items]
        right = sum(a == b for a, b in zip(got, expected, strict=True))
        same = sum(a == b for a, b in zip(got, typed, strict=True))
        rows[name] = {"right": right, "same_as_written": same}
    return {"questions": len(items), "variants": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gold", nargs="*", type=Path, default=GOLD)
    parser.add_argument("--index", type=Path, default=ROOT / "index")
    parser.add_argument("--json", action="store_true", help="end with one line of JSON")
    args = parser.parse_args(argv)
    engine = load_engine(args.index, root=args.index.parent)
    results = {}
    for path in args.gold:
        results[path.name] = measure(engine, path)
        print(f"{path.name}: {results[path.name]['questions']} questions")
        print(f"  {'typed':22}{'right':>7}{'same as written':>17}")
        for name, row in results[path.name]["variants"].items():
            print(f"  {name:22}{row['right']:7d}{row['same_as_written']:17d}")
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
