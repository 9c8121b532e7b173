"""Score the engine on a gold set of questions with their expected answer and evidence.

Gold line: {"id", "lang", "question", "turn", "evidence": [exact substrings], "abstain",
"previous"?, "source"?}. `source` names the transcript (as citations name it) when the index
holds several; without it, evidence may be in any of them. Metrics, overall and per language:
turn@1 (top citation from the right answer), evidence@1/@3 (an evidence span among the first
1/3 citations), MRR of the right answer among the ranked passages, focus (share of the top
citation that is evidence), off-topic abstention, false abstention, and citation integrity
(every citation equals the transcript at its offsets), and the Brier score of the answer's
confidence (the squared gap between the probability it gives and whether its first passage,
cited or closest, comes from the right answer: 0 is perfect, 0.25 what a constant 0.5 scores).

A gold set is checked before anything is scored: a line that is not a gold item, evidence
that is not in the transcript or an answer number it does not have would otherwise score as
a miss of the engine's, silently. Evidence is looked up word for word, and failing that as it
would be typed rather than copied: whatever its case, accents, style of apostrophes and quotes
(`’`, `«»`) and runs of spaces ("ce qu’on  fait" is "Ce qu'on fait", "États-Unis" is
"Etats-Unis").
"""

from __future__ import annotations

import json
import math
import unicodedata
from array import array
from functools import lru_cache
from pathlib import Path

import numpy as np

from .answer import ask, clean_previous, clean_question, ranked
from .errors import InputFileError, QuestionError
from .retrieve import Engine


def read_gold(path: str | Path) -> list[dict]:
    """The gold items of a JSONL file, each checked for the fields and types it needs.

    An item without an id is named by its line ("line 7"). Raises InputFileError naming the
    file and line of the first problem.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise InputFileError("not UTF-8 text", source=str(path)) from None
    except OSError as exc:
        raise InputFileError(f"cannot read the gold set ({exc.strerror or exc})",
                             source=str(path)) from None
    items, seen = [], {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        item = _parse(line, n, str(path))
        problem = gold_problem(item)
        if problem:
            raise InputFileError(problem, n, str(path))
        item.setdefault("id", f"line {n}")
        key = json.dumps(item["id"])
        if key in seen:  # a miss is reported by its id
            raise InputFileError(f"id {item['id']!r} is already the id of line {seen[key]}", n,
                                 str(path))
        seen[key] = n
        items.append(item)
    if not items:
        raise InputFileError("no gold questions in the file", source=str(path))
    return items


def _parse(line: str, n: int, path: str):
    """A line's JSON value, or an InputFileError naming the line: a value nested too deeply
    or a number too long for Python to read is as unreadable as a typo."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        reason = f"not valid JSON ({exc.msg})"
    except RecursionError:
        reason = "cannot be read: JSON nested too deeply"
    except ValueError:  # an integer of more digits than Python converts
        reason = "cannot be read: a number too long"
    raise InputFileError(reason, n, path)


def gold_problem(item) -> str | None:
    """What makes this parsed line not a gold item, or None."""
    if not isinstance(item, dict):
        return "a gold line is a JSON object"
    question = item.get("question")
    if not isinstance(question, str) or not question.strip():
        return '"question" must be a non-empty string'
    try:  # one `ask` refuses would fail the whole run, unnamed, once the models are loaded
        clean_question(question)
    except QuestionError as exc:
        return f'"question" cannot be asked: {exc}'
    if not isinstance(item.get("abstain"), bool):
        return '"abstain" must be true (an off-topic question) or false'
    for key in ("lang", "previous", "source"):
        if item.get(key) is not None and not isinstance(item[key], str):
            return f'"{key}" must be a string'
    try:  # a blank previous question is no context, as in `ask`
        clean_previous(item.get("previous"))
    except QuestionError as exc:
        return f'"previous" cannot be asked with: {exc}'
    for key in ("id", "lang"):  # the report prints them: no encoding writes a lone surrogate
        if not _encodable(item.get(key)):
            return f'"{key}" holds a lone surrogate (a \\ud800-\\udfff escape), not text'
    if item["abstain"]:
        return None
    turn = item.get("turn")
    if not isinstance(turn, int) or isinstance(turn, bool) or turn < 1:
        return '"turn" must be the answer\'s number, from 1, when "abstain" is false'
    evidence = item.get("evidence")
    if not isinstance(evidence, list) or not evidence \
            or not all(isinstance(e, str) and e.strip() for e in evidence):
        return '"evidence" must be a list of exact substrings of the answer, when "abstain" ' \
               'is false'
    return None


def _encodable(value) -> bool:
    """Whether a JSON value's text can be written out as UTF-8."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_gold(engine: Engine, gold: list[dict]) -> None:
    """Raise InputFileError for a gold item this index cannot score: one `gold_problem`
    refuses (items need not come from `read_gold`), an unknown `source`, an answer number its
    transcript does not have, or evidence not found in it word for word."""
    corpus = engine.index.corpus
    texts = corpus.texts
    turns: dict[str, set[int]] = {}
    for d in corpus.documents:
        turns.setdefault(d.source, set()).add(d.turn)
    for item in gold:
        name = f"gold item {item.get('id') if isinstance(item, dict) else item}"
        problem = gold_problem(item)
        if problem:
            raise InputFileError(f"{name}: {problem}")
        source = item.get("source")
        if source is not None and source not in texts:
            raise InputFileError(f"{name}: no transcript {source!r} in the index (it has "
                                 f"{', '.join(sorted(texts))})")
        if item["abstain"]:
            continue
        sources = [source] if source is not None else list(texts)
        if not any(item["turn"] in turns.get(s, ()) for s in sources):
            raise InputFileError(f"{name}: no answer {item['turn']} in "
                                 f"{source or 'the transcripts'}")
        for piece in item["evidence"]:
            if not located({s: texts[s] for s in sources}, piece):
                raise InputFileError(f"{name}: evidence not found in "
                                     f"{source or 'the transcripts'}, even regardless of case, "
                                     f"accents, apostrophes, quotes and spacing: {piece[:80]!r}")


_QUOTES = str.maketrans({**dict.fromkeys("\u2019\u2018\u02bc\uff07\u00b4`", "'"),
                         **dict.fromkeys("\u201c\u201d\u201e\u00ab\u00bb\u2039\u203a",
                                         '"')})


@lru_cache(maxsize=64)
def _as_typed(text: str) -> tuple[str, array]:
    """`text` compared as typed (lower case, no accents, plain apostrophes, quotation marks
    as spaces, for `« Si` and `"Si`, and a run of spaces as one), and where each of its
    characters starts in `text`, plus its end."""
    out, where = [], array("q")
    space = False
    for i, ch in enumerate(text):
        for c in unicodedata.normalize("NFKD", ch).translate(_QUOTES).casefold():
            if c.isspace() or c == '"':
                if not space:
                    out.append(" ")
                    where.append(i)
                space = True
            elif not unicodedata.combining(c):
                out.append(c)
                where.append(i)
                space = False
    where.append(len(text))
    return "".join(out), where


def locate(text: str, piece: str) -> tuple[int, int] | None:
    """Where a piece of evidence lies in `text`: word for word, else as typed (`_as_typed`);
    None when it is not there."""
    return located({"": text}, piece).get("")


def located(texts: dict[str, str], piece: str) -> dict[str, tuple[int, int]]:
    """Where a piece of evidence lies in each of `texts` that has it: word for word, and only
    when none has it so, as typed (the slower reading, for evidence typed, not copied)."""
    found = {name: (at, at + len(piece)) for name, text in texts.items()
             if (at := text.find(piece)) >= 0}
    if found:
        return found
    key = _as_typed(piece)[0].strip()
    if not key:
        return found
    for name, text in texts.items():
        typed, where = _as_typed(text)
        at = typed.find(key)
        if at >= 0:
            found[name] = (where[at], where[at + len(key)])
    return found


def evidence_spans(text: str, evidence: list[str]) -> list[tuple[int, int]]:
    return [span for piece in evidence if (span := locate(text, piece))]


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
           "abstained": answer.abstained, "integrity": integrity,
           "expected": None if item["abstain"] else item["turn"],
           "cited": _where(answer.citations[0], len(texts)) if answer.citations else None,
           "chars": [answer.citations[0].start, answer.citations[0].end]
           if answer.citations else None,
           "confidence": answer.confidence}
    first = (answer.citations or answer.closest or [None])[0]
    if answer.confidence is not None and first is not None:
        on_target = not item["abstain"] and first.answer == item["turn"] \
            and item.get("source") in (None, first.source)
        row["brier"] = (answer.confidence - on_target) ** 2
    if item["abstain"]:
        return row
    source = item.get("source")
    scope = {name: text for name, text in texts.items() if source in (None, name)}
    evidence: dict[str, list[tuple[int, int]]] = {name: [] for name in scope}
    for piece in item["evidence"]:
        for name, span in located(scope, piece).items():
            evidence[name].append(span)

    def right(citation_source: str, turn: int) -> bool:
        return turn == item["turn"] and source in (None, citation_source)

    def holds(c) -> bool:
        return has_evidence((c.start, c.end), evidence.get(c.source, []))

    cites = answer.citations
    hits = ranked(engine, answer, k=10)
    rank = next((i for i, h in enumerate(hits, 1)
                 if right(h.document.source, h.document.turn)), None)
    top = cites[0] if cites else None
    focus = 0.0
    if top:
        covered = sum(_overlap((top.start, top.end), e) for e in evidence.get(top.source, []))
        focus = min(1.0, covered / max(1, top.end - top.start))
    row.update({
        "turn@1": bool(top and right(top.source, top.answer)),
        "evidence@1": bool(top and holds(top)),
        "evidence@3": any(holds(c) for c in cites[:3]),
        "rr": 1.0 / rank if rank else 0.0,
        "focus": focus,
        # where the evidence lies, so that a quote from the wrong part of the right answer
        # says which part it should have been
        "evidence_chars": [list(e) for e in sorted(evidence.get(top.source, []))] if top else [],
    })
    return row


# Each metric's per-question values: which questions count, and what each one scores.
PER_QUESTION = {
    "turn@1": (False, "turn@1"), "evidence@1": (False, "evidence@1"),
    "evidence@3": (False, "evidence@3"), "MRR": (False, "rr"), "focus": (False, "focus"),
    "abstention": (True, "abstained"), "false_abstention": (False, "abstained"),
    "brier": (None, "brier"),  # every question, on topic or not, that has a confidence
}


def _values(rows: list[dict], off_topic: bool | None, key: str) -> list:
    return [r[key] for r in rows if key in r and off_topic in (None, r["abstain"])]


def summarise(rows: list[dict]) -> dict:
    on = [r for r in rows if not r["abstain"]]

    def mean(values):
        values = list(values)
        return round(sum(values) / len(values), 4) if values else None

    report = {"questions": len(rows), "on_topic": len(on), "off_topic": len(rows) - len(on)}
    for metric, (off_topic, key) in PER_QUESTION.items():
        report[metric] = mean(_values(rows, off_topic, key))
    report["integrity"] = mean(r["integrity"] for r in rows)
    return report


Z95 = 1.959964
MEANS = ("MRR", "focus", "brier")  # metrics that average a score, not rates of yes or no
BOOTSTRAP_MIN = 10  # fewer questions resample to too few distinct means to bound theirs


def wilson(hits: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a rate: unlike the rate plus or minus two standard errors,
    it stays within 0 to 1 and is not empty at 0 or 1 of a few dozen questions."""
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap(values: list[float], *, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """A 95% percentile bootstrap interval of a mean (MRR, focus: not rates of yes or no),
    seeded so that the same gold set always prints the same interval. Too narrow on a
    handful of values (one value gives a point), hence `BOOTSTRAP_MIN`."""
    data = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(resamples, len(data)))].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def intervals(rows: list[dict]) -> dict:
    """95% intervals of each metric over these questions: with a few dozen questions a
    metric moves by several points from one gold set to another, and two settings compared on
    one set differ by chance unless their intervals say otherwise."""
    out = {}
    for metric, (off_topic, key) in PER_QUESTION.items():
        values = [float(v) for v in _values(rows, off_topic, key)]
        mean = metric in MEANS
        if not values or (mean and len(values) < BOOTSTRAP_MIN):
            out[metric] = None
            continue
        lo, hi = bootstrap(values) if mean else wilson(int(sum(values)), len(values))
        out[metric] = [round(lo, 3), round(hi, 3)]
    return out


def evaluate(engine: Engine, gold: list[dict], *, k: int = 3) -> dict:
    """Metrics overall and per language, their 95% intervals under "intervals", the ids of
    the questions that missed and, under "missed", what each of them expected and got; under
    "off_evidence", those answered from the right answer whose first citation misses the
    evidence, with where it lies. Checks the gold set first (check_gold)."""
    check_gold(engine, gold)
    rows = [score_one(engine, item, k=k) for item in gold]
    report = {"all": summarise(rows)}
    spread = {"all": intervals(rows)}
    for lang in sorted({r["lang"] for r in rows}):
        report[lang] = summarise([r for r in rows if r["lang"] == lang])
        spread[lang] = intervals([r for r in rows if r["lang"] == lang])
    report["intervals"] = spread
    outcomes = [_outcome(r) for r in rows]
    missed = [o for o in outcomes if not o["correct"]]
    report["misses"] = [o["id"] for o in missed]
    report["missed"] = [{k: o[k] for k in ("id", "expected", "got")} for o in missed]
    report["off_evidence"] = [
        {"id": r["id"], "chars": r["chars"], "evidence": r["evidence_chars"]}
        for r in rows if not r["abstain"] and r["turn@1"] and not r["evidence@1"]]
    report["per_question"] = outcomes
    return report


def _outcome(row: dict) -> dict:
    """What a question expected (None: an abstention) and got, and whether that is right:
    an abstention off topic, or on topic a top citation from the right answer; on topic,
    whether that citation holds the evidence too (None off topic)."""
    confidence = row["confidence"]
    return {"id": row["id"], "lang": row["lang"],
            "correct": row["abstained"] if row["abstain"] else bool(row["turn@1"]),
            "evidence@1": None if row["abstain"] else bool(row["evidence@1"]),
            "expected": row["expected"],
            "got": "an abstention" if row["abstained"] else row["cited"],
            "chars": row["chars"],  # None when nothing is cited
            "confidence": None if confidence is None else round(confidence, 4)}


def read_report(path: str | Path) -> dict:
    """A report that `rag eval --json` wrote earlier, to compare a new run with."""
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputFileError("not UTF-8 text", source=str(path)) from None
    except OSError as exc:
        raise InputFileError(f"cannot read the earlier report ({exc.strerror or exc})",
                             source=str(path)) from None
    except (ValueError, RecursionError):
        report = None
    rows = report.get("per_question") if isinstance(report, dict) else None
    if not isinstance(rows, list) or not all(
            isinstance(r, dict) and "id" in r and isinstance(r.get("correct"), bool)
            for r in rows):
        raise InputFileError("not a report written by `rag eval --json`", source=str(path))
    return report


def mcnemar(lost: int, gained: int) -> float:
    """The exact two-sided McNemar p-value: how likely a split of the changed questions at
    least this uneven is when neither run is better (each change a fair coin)."""
    n = lost + gained
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(lost, gained) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def compare(report: dict, before: dict) -> dict:
    """Which questions a run gets right that an earlier run on the same gold set got wrong,
    and the reverse, matched by id; with the chance of so uneven a split if neither run is
    better. Questions in only one of the two runs are counted, not compared."""
    def key(r):
        return json.dumps(r["id"], sort_keys=True)

    earlier = {key(r): r for r in before["per_question"]}
    now = {key(r): r for r in report["per_question"]}
    both = [k for k in now if k in earlier]
    gained = [now[k]["id"] for k in both if now[k]["correct"] and not earlier[k]["correct"]]
    lost = [now[k]["id"] for k in both if earlier[k]["correct"] and not now[k]["correct"]]
    # Evidence at the top, for the on-topic questions both runs scored it for (a report
    # written before it was recorded has none).
    quoted = [k for k in both if isinstance(now[k].get("evidence@1"), bool)
              and isinstance(earlier[k].get("evidence@1"), bool)]
    return {"compared": len(both), "only_now": len(now) - len(both),
            "only_before": len(earlier) - len(both),
            "right_before": sum(earlier[k]["correct"] for k in both),
            "right_now": sum(now[k]["correct"] for k in both),
            "gained": gained, "lost": lost, "p_value": round(mcnemar(len(lost), len(gained)), 4),
            "evidence_gained": [now[k]["id"] for k in quoted
                                if now[k]["evidence@1"] and not earlier[k]["evidence@1"]],
            "evidence_lost": [now[k]["id"] for k in quoted
                              if earlier[k]["evidence@1"] and not now[k]["evidence@1"]]}


def _where(citation, transcripts: int) -> str:
    """Which answer a citation is from, naming its transcript when there are several."""
    return f"answer {citation.answer}" + (f" of {citation.source}" if transcripts > 1 else "")


def _chars(spans: list) -> str:
    return "chars " + " and ".join(f"{a}–{b}" for a, b in spans)


def format_table(report: dict) -> str:
    groups = [g for g in report
              if g not in ("misses", "missed", "off_evidence", "intervals", "per_question",
                           "against")]
    metrics = list(report["all"])
    lines = ["metric".ljust(18) + "".join(g.rjust(10) for g in groups)]
    for m in metrics:
        cells = []
        for g in groups:
            v = report[g][m]
            cells.append(("-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v))
                         .rjust(10))
        lines.append(m.ljust(18) + "".join(cells))
    spread = report.get("intervals")
    if spread:
        lines.append("")
        lines.append("95% interval".ljust(18) + "".join(g.rjust(14) for g in groups))
        for m in PER_QUESTION:
            cells = [("-" if not spread[g].get(m) else
                      f"{spread[g][m][0]:.2f}–{spread[g][m][1]:.2f}").rjust(14) for g in groups]
            lines.append(m.ljust(18) + "".join(cells))
    if report["misses"]:
        lines.append("missed: " + ", ".join(str(i) for i in report["misses"]))
        for m in report.get("missed", []):
            expected = "an abstention" if m["expected"] is None else f"answer {m['expected']}"
            lines.append(f"  {m['id']}: expected {expected}, got {m['got']}")
    if report.get("off_evidence"):
        lines.append("right answer, another part of it quoted: "
                     + ", ".join(str(m["id"]) for m in report["off_evidence"]))
        for m in report["off_evidence"]:
            lines.append(f"  {m['id']}: evidence at {_chars(m['evidence'])}; "
                         f"quoted {_chars([m['chars']])}")
    against = report.get("against")
    if against:
        lines.append(f"against the earlier run ({against['compared']} questions in both): "
                     f"right {against['right_before']} -> {against['right_now']}, "
                     f"exact McNemar p = {against['p_value']:.3g}")
        for label in ("gained", "lost"):
            if against[label]:
                lines.append(f"  {label}: " + ", ".join(str(i) for i in against[label]))
        for label in ("gained", "lost"):
            if against.get(f"evidence_{label}"):
                lines.append(f"  evidence@1 {label}: "
                             + ", ".join(str(i) for i in against[f"evidence_{label}"]))
        for label, count in (("only in this run", against["only_now"]),
                             ("only in the earlier run", against["only_before"])):
            if count:
                lines.append(f"  {count} question{'s' * (count != 1)} {label}, not compared")
    return "\n".join(lines)
