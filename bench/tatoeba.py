"""Cross-lingual sanity check: does each English sentence find its own French translation (and
the reverse) as nearest neighbour? English questions over French transcripts rely on it.

    python bench/tatoeba.py [--json] [--limit N]

Data: 1,000 aligned Tatoeba pairs (line i of one file translates line i of the other). Each
side is embedded with the engine's embedders, given each line as the engine gives them every
text (`rag.lexical.as_read`: compatibility form, plain apostrophes; the French lines' narrow
no-break spaces before `?` and `!` become plain ones); top-1 is the share of queries whose
nearest neighbour by cosine is the aligned line. Multilingual USE is the engine's
cross-lingual model; all-MiniLM-L6-v2 (English-only training) is shown for comparison, and
USE over the lines exactly as written beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from embed_cache import cached  # noqa: E402

from rag.embed import (  # noqa: E402
    DEFAULT_MODEL,
    E5_MODEL,
    MULTILINGUAL_MODEL,
    embed_questions,
    load_embedder,
)
from rag.index import AsRead  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "tatoeba.fra-eng"


def read_pairs(stem: Path = DATA, limit: int | None = None) -> tuple[list[str], list[str]]:
    """Aligned English and French lines (the first `limit` pairs when given)."""
    english = Path(f"{stem}.eng").read_text(encoding="utf-8").splitlines()
    french = Path(f"{stem}.fra").read_text(encoding="utf-8").splitlines()
    if len(english) != len(french):
        raise ValueError(f"{stem}: {len(english)} English lines but {len(french)} French")
    return english[:limit], french[:limit]


def top1(queries: np.ndarray, targets: np.ndarray) -> float:
    """Share of rows i whose most similar target row is row i (unit vectors: cosine = dot)."""
    if not len(queries):
        return 0.0
    best = np.argmax(queries @ targets.T, axis=1)
    return round(float(np.mean(best == np.arange(len(queries)))), 4)


def vectors(embedder, english: list[str], french: list[str]) -> dict[str, np.ndarray]:
    """Each side read as questions (the queries) and as texts to find (the targets), as the
    engine reads a question and a passage; the same for a model that reads both alike."""
    return {"en?": embed_questions(embedder, english), "fr?": embed_questions(embedder, french),
            "en": embedder.embed_batch(english), "fr": embedder.embed_batch(french)}


def measure(v: dict[str, np.ndarray]) -> dict[str, float]:
    return {"en->fr": top1(v["en?"], v["fr"]), "fr->en": top1(v["fr?"], v["en"])}


def together(*models: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Several models' vectors side by side: the cosine is then their cosines' mean."""
    return {k: np.concatenate([m[k] for m in models], axis=1) / np.sqrt(len(models))
            for k in models[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="end with one line of JSON")
    parser.add_argument("--limit", type=int, default=None, help="only the first N pairs")
    parser.add_argument("--data", type=Path, default=DATA, help="path stem of .eng/.fra")
    parser.add_argument("--no-cache", action="store_true")
    args = parser.parse_args(argv)
    english, french = read_pairs(args.data, args.limit)
    results, seconds, kept = {}, {}, {}
    raw = f"{MULTILINGUAL_MODEL}, lines as written"
    both = f"{MULTILINGUAL_MODEL} + {E5_MODEL}"
    for label, name, read in ((E5_MODEL, E5_MODEL, True),
                              (MULTILINGUAL_MODEL, MULTILINGUAL_MODEL, True),
                              (raw, MULTILINGUAL_MODEL, False),
                              (DEFAULT_MODEL, DEFAULT_MODEL, True)):
        start = time.perf_counter()
        embedder = cached(load_embedder(name), not args.no_cache)
        kept[label] = vectors(AsRead(embedder) if read else embedder, english, french)
        results[label] = measure(kept[label])
        seconds[label] = time.perf_counter() - start
    start = time.perf_counter()
    results[both] = measure(together(kept[MULTILINGUAL_MODEL], kept[E5_MODEL]))
    seconds[both] = seconds[MULTILINGUAL_MODEL] + seconds[E5_MODEL] + \
        time.perf_counter() - start
    print(f"Tatoeba fra-eng: {len(english)} pairs, nearest-neighbour top-1")
    print(f"{'model':50}{'en->fr':>8}{'fr->en':>8}{'seconds':>9}")
    for name, figures in results.items():
        print(f"{name:50}{figures['en->fr']:8.3f}{figures['fr->en']:8.3f}{seconds[name]:9.1f}")
    if args.json:
        out = dict(results[both], model=both, pairs=len(english))
        out["baselines"] = {name: figures for name, figures in results.items() if name != both}
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
