"""The engine against the plain dense pipeline of the common RAG tutorials, on the gold set.

Baseline: the transcript cut into 1,000-character chunks (200 overlap), all-MiniLM-L6-v2,
exact FAISS search, top chunk cited; it never abstains. Both run in the same process on the
same questions; the table gives turn@1 (the top citation lies mostly in the right answer),
evidence@1, the characters cited, and off-topic abstention.

    python bench/transcript_baseline.py [tests/gold.jsonl] [--json]
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
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rag import ask, load_engine  # noqa: E402
from rag.evaluate import evidence_spans, has_evidence, read_gold  # noqa: E402
from rag.followup import contextualise  # noqa: E402


def chunks(text: str, size: int = 1000, overlap: int = 200) -> list[tuple[int, int]]:
    spans, start = [], 0
    while start < len(text):
        spans.append((start, min(len(text), start + size)))
        start += size - overlap
    return spans


def turn_of(span, turns) -> int | None:
    best = max(turns, key=lambda t: min(span[1], t.end) - max(span[0], t.start))
    return best.number if min(span[1], best.end) > max(span[0], best.start) else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("gold", nargs="?", default=str(ROOT / "tests" / "gold.jsonl"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import faiss

    engine = load_engine(ROOT / "index")
    gold = read_gold(args.gold)
    source = next(iter(engine.index.corpus.texts))
    text = engine.index.corpus.texts[source]
    from rag.transcript import parse_transcript

    turns = parse_transcript((ROOT / source).read_bytes()).turns
    spans = chunks(text)
    minilm = engine.embedders["all-MiniLM-L6-v2"]
    index = faiss.IndexFlatIP(minilm.dim)
    index.add(minilm.embed_batch([text[a:b] for a, b in spans]))

    rows = {"baseline": [], "engine": []}
    for item in gold:
        q = contextualise(item["question"], item.get("previous"))
        _, found = index.search(minilm.embed_batch([q]), 1)
        span = spans[int(found[0][0])]
        answer = ask(engine, item["question"], previous=item.get("previous"))
        top = answer.citations[0] if answer.citations else None
        for name, cited, abstained in (
                ("baseline", span, False),
                ("engine", (top.start, top.end) if top else None, answer.abstained)):
            row = {"abstain": item["abstain"], "abstained": abstained}
            if not item["abstain"]:
                ev = evidence_spans(text, item["evidence"])
                row["turn"] = bool(cited) and turn_of(cited, turns) == item["turn"]
                row["evidence"] = bool(cited) and has_evidence(cited, ev)
                row["chars"] = cited[1] - cited[0] if cited else 0
            rows[name].append(row)

    def summary(rs):
        on = [r for r in rs if not r["abstain"]]
        off = [r for r in rs if r["abstain"]]
        return {"turn@1": round(float(np.mean([r["turn"] for r in on])), 3),
                "evidence@1": round(float(np.mean([r["evidence"] for r in on])), 3),
                "cited_chars_median": int(np.median([r["chars"] for r in on if r["chars"]])),
                "abstention": round(float(np.mean([r["abstained"] for r in off])), 3),
                "false_abstention": round(float(np.mean([r["abstained"] for r in on])), 3)}

    report = {name: summary(rs) for name, rs in rows.items()}
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{'metric':<20}{'baseline':>10}{'engine':>10}")
        for metric in report["engine"]:
            print(f"{metric:<20}{report['baseline'][metric]:>10}{report['engine'][metric]:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
