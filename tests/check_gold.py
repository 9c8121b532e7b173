#!/usr/bin/env python3
"""Validate tests/gold.jsonl against the Blinken / France 2 transcript.

Usage: python3 tests/check_gold.py [path/to/gold.jsonl]
Exits 0 if the gold file is valid, 1 otherwise (problems printed to stderr).
Stdlib only.
"""
import json
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]  # project root (/work/main)
NAME = "blinken-france2-2021-10.txt"
CANDIDATES = [ROOT / "data" / NAME, HERE.parents[2] / "shared" / "transcripts" / NAME]

N_TURNS = 5
MIN_TOTAL, MIN_ON, MIN_OFF, MIN_PER_TURN = 110, 80, 30, 10
ON_KEYS = {"id", "lang", "question", "turn", "evidence", "abstain"}
OFF_KEYS = {"id", "lang", "question", "abstain"}
OPTIONAL_KEYS = {"previous"}


def find_transcript():
    for p in CANDIDATES:
        if p.is_file():
            return p
    sys.exit("transcript not found in: " + ", ".join(map(str, CANDIDATES)))


def answer_spans(text):
    """(start, end) of each quoted answer block: the text strictly between its quotes."""
    quotes = [i for i, c in enumerate(text) if c == '"']
    if len(quotes) % 2:
        raise ValueError(f"odd number of double quotes in transcript ({len(quotes)})")
    return [(quotes[k] + 1, quotes[k + 1]) for k in range(0, len(quotes), 2)]


def in_span(text, ev, span):
    start = text.find(ev)
    while start != -1:
        if span[0] <= start and start + len(ev) <= span[1]:
            return True
        start = text.find(ev, start + 1)
    return False


def main():
    gold = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent / "gold.jsonl"
    tpath = find_transcript()
    text = tpath.read_text(encoding="utf-8")
    spans = answer_spans(text)
    errors = []
    if len(spans) != N_TURNS:
        errors.append(f"expected {N_TURNS} answer blocks, found {len(spans)}")

    ids = set()
    questions = Counter()
    by_lang = Counter()
    by_turn = Counter()
    by_abstain = Counter()
    on_lang = Counter()
    off_lang = Counter()
    followups = 0
    n = 0
    for lineno, line in enumerate(gold.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            errors.append(f"line {lineno}: empty line")
            continue
        n += 1
        where = f"line {lineno}"
        try:
            r = json.loads(line)
        except json.JSONDecodeError as e:
            errors.append(f"{where}: invalid JSON ({e})")
            continue
        if not isinstance(r, dict):
            errors.append(f"{where}: not a JSON object")
            continue
        rid = r.get("id")
        where = f"line {lineno} ({rid})"
        abstain = r.get("abstain")
        if not isinstance(abstain, bool):
            errors.append(f"{where}: 'abstain' must be a boolean")
            continue
        required = OFF_KEYS if abstain else ON_KEYS
        keys = set(r)
        if required - keys:
            errors.append(f"{where}: missing keys {sorted(required - keys)}")
        if keys - required - OPTIONAL_KEYS:
            errors.append(f"{where}: unexpected keys {sorted(keys - required - OPTIONAL_KEYS)}")
        if not isinstance(rid, str) or not rid:
            errors.append(f"{where}: 'id' must be a non-empty string")
        elif rid in ids:
            errors.append(f"{where}: duplicate id")
        ids.add(rid)
        lang = r.get("lang")
        if lang not in ("fr", "en"):
            errors.append(f"{where}: lang must be 'fr' or 'en', got {lang!r}")
        elif isinstance(rid, str):
            prefix = f"off-{lang}-" if abstain else f"{lang}-"
            if not rid.startswith(prefix):
                errors.append(f"{where}: id should start with {prefix!r}")
        q = r.get("question")
        if not isinstance(q, str) or not q.strip():
            errors.append(f"{where}: 'question' must be a non-empty string")
        else:
            questions[q.strip().lower()] += 1
            if len(q) > 25 and q.strip(" ?") in text:
                errors.append(f"{where}: question copied verbatim from the transcript")
        if "previous" in r:
            if not isinstance(r["previous"], str) or not r["previous"].strip():
                errors.append(f"{where}: 'previous' must be a non-empty string")
            followups += 1
        by_lang[lang] += 1
        by_abstain[abstain] += 1
        if abstain:
            off_lang[lang] += 1
            continue
        on_lang[lang] += 1
        turn = r.get("turn")
        if not isinstance(turn, int) or isinstance(turn, bool) or not 1 <= turn <= N_TURNS:
            errors.append(f"{where}: 'turn' must be an int in 1..{N_TURNS}")
            continue
        by_turn[turn] += 1
        ev = r.get("evidence")
        if not isinstance(ev, list) or not 1 <= len(ev) <= 3:
            errors.append(f"{where}: 'evidence' must be a list of 1 to 3 strings")
            continue
        for e in ev:
            if not isinstance(e, str) or not e.strip():
                errors.append(f"{where}: evidence must be non-empty strings")
            elif e not in text:
                errors.append(f"{where}: evidence not a substring of transcript: {e!r}")
            elif turn <= len(spans) and not in_span(text, e, spans[turn - 1]):
                errors.append(f"{where}: evidence not inside answer turn {turn}: {e!r}")
        if len(set(ev)) != len(ev):
            errors.append(f"{where}: duplicate evidence strings")

    for q, c in questions.items():
        if c > 1:
            errors.append(f"duplicate question ({c}x): {q!r}")
    on, off = by_abstain[False], by_abstain[True]
    if n < MIN_TOTAL:
        errors.append(f"only {n} lines (< {MIN_TOTAL})")
    if on < MIN_ON:
        errors.append(f"only {on} on-topic questions (< {MIN_ON})")
    if off < MIN_OFF:
        errors.append(f"only {off} off-topic questions (< {MIN_OFF})")
    for t in range(1, N_TURNS + 1):
        if by_turn[t] < MIN_PER_TURN:
            errors.append(f"turn {t}: only {by_turn[t]} questions (< {MIN_PER_TURN})")

    print(f"transcript: {tpath}")
    print(f"gold:       {gold}")
    print(f"total {n} | on-topic {on} (fr {on_lang['fr']}, en {on_lang['en']}) | "
          f"off-topic {off} (fr {off_lang['fr']}, en {off_lang['en']})")
    print("by lang: " + ", ".join(f"{k}={v}" for k, v in sorted(by_lang.items(), key=str)))
    print("by turn: " + ", ".join(f"{t}={by_turn[t]}" for t in range(1, N_TURNS + 1)))
    print(f"follow-ups (with 'previous'): {followups}")
    if errors:
        for e in errors:
            print("ERROR:", e, file=sys.stderr)
        print(f"FAILED: {len(errors)} problem(s)", file=sys.stderr)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
