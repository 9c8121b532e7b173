"""BM25 with numpy postings scores exactly as the list-based version it replaced, on the
transcript and on PIAF, so the speed-up changes no ranking, threshold or figure."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.corpus import corpus_from_transcripts
from rag.lexical import BM25
from rag.transcript import read_transcript

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from bm25_lists import ListBM25  # noqa: E402

TRANSCRIPT = ROOT / "data" / "blinken-france2-2021-10.txt"
PIAF = ROOT.parent / "shared" / "data" / "piaf-v1.1.json"


def assert_same_scores(documents: list[str], queries: list[str], **params) -> None:
    new, old = BM25(documents, **params), ListBM25(documents, **params)
    assert new.vocabulary == old.vocabulary
    for query in queries:
        for ignore in (frozenset(), frozenset({"blinke", "france"})):
            a, b = new.scores(query, ignore=ignore), old.scores(query, ignore=ignore)
            assert a.dtype == b.dtype and np.array_equal(a, b), query
            for ids in some_ids(len(documents)):
                assert np.array_equal(new.scores_of(query, ids, ignore=ignore), a[ids]), query


def some_ids(n: int) -> list[np.ndarray]:
    """Documents asked for as the engine asks: unsorted, repeated (passages of one answer),
    first and last, none."""
    rng = np.random.default_rng(0)
    picks = [np.arange(n), rng.permutation(n)[: max(1, n // 3)], np.array([n - 1, 0, n - 1])]
    return [p for p in picks if n] + [np.zeros(0, dtype=np.int64)]


def test_transcript_scores_unchanged():
    corpus = corpus_from_transcripts([read_transcript(TRANSCRIPT, source="t")])
    gold = [json.loads(line)["question"]
            for line in (ROOT / "tests" / "gold.jsonl").read_text().splitlines() if line]
    queries = gold + ["", "le la les", "Etats-Unis 2021 AUKUS sous-marins"]
    assert_same_scores([p.text for p in corpus.passages], queries)
    assert_same_scores([corpus.document_text(d) for d in corpus.documents], queries, k1=0.1)


@pytest.mark.skipif(not PIAF.exists(), reason="no PIAF data")
def test_piaf_scores_unchanged():
    data = json.loads(PIAF.read_text(encoding="utf-8"))["data"]
    paragraphs = [p["context"] for article in data[::2] for p in article["paragraphs"]]
    queries = [qa["question"] for article in data[:40:2] for p in article["paragraphs"]
               for qa in p["qas"]]
    assert_same_scores(paragraphs, queries)


def test_empty_corpus_and_empty_documents():
    assert BM25([]).scores("France").shape == (0,)
    assert_same_scores(["", "la", "France France"], ["France", "la"])


def test_character_grams_match_words_that_share_no_prefix():
    from rag.lexical import char_grams

    assert char_grams("l’Hôtel de l’ONU") == ["hote", "otel", "onu"]
    assert set(char_grams("engagement")) <= set(char_grams("désengagement"))
    bm25 = BM25(["un désengagement américain", "la coopération au Sahel"], analyzer=char_grams)
    scores = bm25.scores("engagement")
    assert scores[0] > 0 and scores[1] == 0


def test_gram_scores_of_candidates_equal_full_bm25():
    from rag.lexical import GramBM25, char_grams

    corpus = corpus_from_transcripts([read_transcript(TRANSCRIPT, source="t")])
    documents = [p.text for p in corpus.passages]
    full, some = BM25(documents, analyzer=char_grams), GramBM25(documents)
    ids = np.array([5, 0, 3])
    for query in ("désengagement américain", "Sahel logistics support", "Blinken", "???"):
        for ignore in (frozenset(), frozenset(char_grams("Antony Blinken"))):
            np.testing.assert_allclose(some.scores(query, ids, ignore=ignore),
                                       full.scores(query, ignore=ignore)[ids], atol=1e-6)
