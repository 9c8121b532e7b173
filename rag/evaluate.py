"""Score the engine on a gold set of questions with their expected answer and evidence.

Gold line: {"id", "lang", "question", "turn", "evidence": [exact substrings], "abstain",
"previous"?}. Metrics, overall and per language: turn@1 (top citation from the right answer),
evidence@1/@3 (an evidence span among the first 1/3 citations), MRR of the right answer among
the ranked passages, focus (share of the top citation that is evidence), off-topic abstention,
false abstention, and citation integrity (every citation equals the transcript at its offsets).
"""

from __future__ import annotations

import json
from pathlib import Path

from .answer import ask
from .followup import contextualise
from .retrieve import Engine, search


def read_gold(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def evidence_spans(text: str, evidence: list[str]) -> list[tuple[int, int]]:
    spans = []
    for piece in evidence:
        at = text.find(piece)
        if at >= 0:
            spans.append((at, at + len(piece)))
    return spans


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> int:
    return max(0, min(a[1], b[1]) - max(a[0], b[0]))


def has_evidence(span: tuple[int, int], evidence: list[tuple[int, int]]) -> bool:
    """A citation holds evidence when it covers at least half of an evidence span (or the
    evidence covers at least half of it)."""
    return any(_overlap(span, e) >= 0.5 * min(e[1] - e[0], span[1] - span[0]) for e in evidence)


def score_one(engine: Engine, item: dict, *, k: int = 3) -> dict:
    """Per-question outcome: what was cited, and each metric's value for it."""
    texts = engine.index.corpus.texts
    answer = ask(engine, item["question"], k=k, previous=item.get("previous"))
    integrity = all(texts.get(c.source, "")[c.start:c.end] == c.text
                    for c in answer.citations + answer.closest)
    row = {"id": item.get("id"), "lang": item.get("lang", "?"), "abstain": item["abstain"],
           "abstained": answer.abstained, "integrity": integrity}
    if item["abstain"]:
        return row
    text = next(iter(texts.values()))
    evidence = evidence_spans(text, item.get("evidence", []))
    cites = answer.citations
    hits = search(engine, contextualise(item["question"], item.get("previous")), k=10)
    rank = next((i for i, h in enumerate(hits, 1) if h.document.turn == item["turn"]), None)
    top = cites[0] if cites else None
    focus = 0.0
    if top:
        covered = sum(_overlap((top.start, top.end), e) for e in evidence)
        focus = min(1.0, covered / max(1, top.end - top.start))
    row.update({
        "turn@1": bool(top and top.answer == item["turn"]),
        "evidence@1": bool(top and has_evidence((top.start, top.end), evidence)),
        "evidence@3": any(has_evidence((c.start, c.end), evidence) for c in cites[:3]),
        "rr": 1.0 / rank if rank else 0.0,
        "focus": focus,
    })
    return row


def summarise(rows: list[dict]) -> dict:
    on = [r for r in rows if not r["abstain"]]
    off = [r for r in rows if r["abstain"]]

    def mean(values):
        values = list(values)
        return round(sum(values) / len(values), 4) if values else None

    return {
        "questions": len(rows), "on_topic": len(on), "off_topic": len(off),
        "turn@1": mean(r["turn@1"] for r in on),
        "evidence@1": mean(r["evidence@1"] for r in on),
        "evidence@3": mean(r["evidence@3"] for r in on),
        "MRR": mean(r["rr"] for r in on),
        "focus": mean(r["focus"] for r in on),
        "abstention": mean(r["abstained"] for r in off),
        "false_abstention": mean(r["abstained"] for r in on),
        "integrity": mean(r["integrity"] for r in rows),
    }


def evaluate(engine: Engine, gold: list[dict], *, k: int = 3) -> dict:
    """Metrics overall and per language, plus the ids of the questions that missed."""
    rows = [score_one(engine, item, k=k) for item in gold]
    report = {"all": summarise(rows)}
    for lang in sorted({r["lang"] for r in rows}):
        report[lang] = summarise([r for r in rows if r["lang"] == lang])
    report["misses"] = [r["id"] for r in rows
                        if (r["abstain"] != r["abstained"]) or (not r["abstain"]
                                                                 and not r["turn@1"])]
    return report


def format_table(report: dict) -> str:
    groups = [g for g in report if g != "misses"]
    metrics = list(report["all"])
    lines = ["metric".ljust(18) + "".join(g.rjust(10) for g in groups)]
    for m in metrics:
        cells = []
        for g in groups:
            v = report[g][m]
            cells.append(("-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v))
                         .rjust(10))
        lines.append(m.ljust(18) + "".join(cells))
    if report["misses"]:
        lines.append("missed: " + ", ".join(str(i) for i in report["misses"]))
    return "\n".join(lines)
