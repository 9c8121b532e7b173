"""Retrieval quality on the public gold set, measured with the real models and index.

The floors sit a little under the measured figures (docs/quality.md), so a change that makes
retrieval or abstention worse fails here.
"""

import numpy as np
import pytest

from rag.evaluate import evaluate, read_gold
from rag.retrieve import closest_clause, distinctness, query_features, signal_matrix

from .conftest import (
    FOLLOW_UPS,
    FOLLOW_UPS_UNSEEN,
    GOLD,
    NEAR,
    TRANSCRIPT,
    UNSEEN,
    UNSEEN_2,
    UNSEEN_3,
)


@pytest.fixture(scope="module")
def report(engine):
    return evaluate(engine, read_gold(GOLD))


def test_gold_set_is_large_and_mixed():
    gold = read_gold(GOLD)
    on = [g for g in gold if not g["abstain"]]
    assert len(on) >= 80 and len(gold) - len(on) >= 25
    assert {g["lang"] for g in on} == {"fr", "en"}
    assert sum(1 for g in gold if g.get("previous")) >= 5


def test_citations_are_exact(report):
    assert report["all"]["integrity"] == 1.0


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_right_answer_first(report, lang):
    assert report[lang]["turn@1"] >= 0.82
    assert report[lang]["evidence@3"] >= 0.85


def test_citations_are_focused(report):
    assert report["all"]["focus"] >= 0.35
    assert report["all"]["evidence@1"] >= 0.75


def test_abstention(report):
    assert report["all"]["abstention"] >= 0.80
    assert report["all"]["false_abstention"] <= 0.07


OTHER_GOLD = (GOLD, UNSEEN, UNSEEN_2, UNSEEN_3, NEAR, FOLLOW_UPS, FOLLOW_UPS_UNSEEN)


@pytest.mark.parametrize("path", [UNSEEN, UNSEEN_2, UNSEEN_3, NEAR, FOLLOW_UPS, FOLLOW_UPS_UNSEEN],
                         ids=["unseen", "unseen-2", "unseen-3", "near", "follow-ups",
                              "follow-ups-unseen"])
def test_the_unseen_questions_are_well_formed_and_apart(path):
    """Gold files beside the public one: their evidence is exact, and none of their questions
    is also in the public gold set or in another such file."""
    text = TRANSCRIPT.read_text(encoding="utf-8")
    unseen = read_gold(path)
    others = {g["question"] for p in OTHER_GOLD if p != path for g in read_gold(p)}
    assert len({g["id"] for g in unseen}) == len(unseen)
    on = [g for g in unseen if not g["abstain"]]
    assert len(on) >= 20 and len(unseen) - len(on) >= 8
    assert {g["lang"] for g in on} == {g["lang"] for g in unseen} == {"fr", "en"}
    assert {g["turn"] for g in on} == {1, 2, 3, 4, 5}
    assert all(e in text for g in on for e in g["evidence"])
    assert not {g["question"] for g in unseen} & others


@pytest.mark.parametrize("path, floors", [
    (UNSEEN, {"turn@1": 0.75, "evidence@3": 0.80, "abstention": 0.60, "false_abstention": 0.12}),
    (UNSEEN_2, {"turn@1": 0.62, "evidence@3": 0.70, "abstention": 0.62, "false_abstention": 0.17}),
    (UNSEEN_3, {"turn@1": 0.60, "evidence@3": 0.65, "abstention": 0.55, "false_abstention": 0.17}),
], ids=["unseen", "unseen-2", "unseen-3"])
def test_unseen_questions_keep_their_figures(engine, path, floors):
    """Floors a little under what the engine measured on them when they were written, so that
    a change that fits the public gold set better but carries over worse fails here."""
    report = evaluate(engine, read_gold(path))["all"]
    assert report["integrity"] == 1.0
    assert report["turn@1"] >= floors["turn@1"]
    assert report["evidence@3"] >= floors["evidence@3"]
    assert report["abstention"] >= floors["abstention"]
    assert report["false_abstention"] <= floors["false_abstention"]


def test_the_e5_tie_break_holds_on_questions_written_after_it_was_chosen(scratch, embedders):
    """The tie-break's margin and reading were chosen with the first two unseen files in view;
    the third was written after. Over an index built with e5, the tie-break must not answer
    fewer of its questions rightly, nor abstain on fewer of its off-topic ones, than the same
    index read without it."""
    from rag import IndexSettings, Weights, build, load_engine

    build(scratch / "index", root=scratch, settings=IndexSettings(e5=True),
          embedders=dict(embedders))
    gold = read_gold(UNSEEN_3)
    plain = evaluate(load_engine(scratch / "index", root=scratch,
                                 weights=Weights(tiebreak=0.0)), gold)["all"]
    judged = evaluate(load_engine(scratch / "index", root=scratch), gold)["all"]
    assert judged["integrity"] == 1.0
    for metric in ("turn@1", "evidence@1", "abstention"):
        assert judged[metric] >= plain[metric], metric
    assert judged["false_abstention"] <= plain["false_abstention"]


@pytest.mark.parametrize("path, most", [
    (UNSEEN, 0.14), (FOLLOW_UPS_UNSEEN, 0.14), (UNSEEN_2, 0.18), (UNSEEN_3, 0.18),
], ids=["unseen", "follow-ups-unseen", "unseen-2", "unseen-3"])
def test_confidence_holds_on_questions_no_fit_read(engine, path, most):
    """The confidence curve was fitted on margins and leads of public questions each rule
    never saw (bench/calibration.py). On files no fit reads, its Brier score stays well under
    the best single probability (the public set's share of right first passages, about 0.25
    here), and under what the abstention margin alone gave (0.117, 0.116, 0.193, 0.189)."""
    report = evaluate(engine, read_gold(path))
    assert report["all"]["brier"] <= most


def test_questions_in_the_interviews_own_words_keep_their_ranking(engine):
    """Off-topic questions that reuse the interview's names are mostly answered (the limit
    docs/quality.md describes), but the on-topic ones among them must still rank the right
    answer first, and the rule must not abstain on them more than it did when they were
    written."""
    report = evaluate(engine, read_gold(NEAR))
    assert report["all"]["integrity"] == 1.0
    assert report["all"]["MRR"] >= 0.90 and report["all"]["evidence@3"] >= 0.70
    assert report["all"]["false_abstention"] <= 0.25


@pytest.mark.parametrize("path", [FOLLOW_UPS, FOLLOW_UPS_UNSEEN],
                         ids=["follow-ups", "follow-ups-unseen"])
def test_follow_ups_are_answered_from_the_conversation_and_judged_on_their_own_words(
        engine, path):
    """Every question here follows another. The on-topic ones need the question before them
    to be understood; the off-topic ones ("Et sur la Chine ?" after a question on the Sahel)
    must not be answered on the strength of the question they follow. Before follow-ups were
    judged on their own words, off-topic abstention here was 0.33 and 0.25."""
    gold = read_gold(path)
    assert all(g.get("previous") for g in gold)
    report = evaluate(engine, gold)
    assert report["all"]["integrity"] == 1.0
    assert report["all"]["turn@1"] >= 0.80 and report["all"]["evidence@3"] >= 0.80
    assert report["all"]["abstention"] >= 0.70 and report["all"]["false_abstention"] <= 0.10


def test_words_missing_from_the_transcript_count_apart_for_a_question_across_languages(engine):
    """Every word of an English question is missing from French text: that alone says
    nothing about whether the interview answers it."""
    fr = query_features(engine, "Que pense Blinken de l'Ukraine ?")
    en = query_features(engine, "What does Blinken think about Ukraine?")
    assert fr["query.cross_lingual"] == 0.0 and en["query.cross_lingual"] == 1.0
    assert 0 < fr["query.unknown_terms_same"] == fr["query.unknown_terms"] < 1
    assert en["query.unknown_terms"] > 0
    assert en["query.unknown_terms_same"] == 0.0
    # Names count in either language, "l'Ukraine" included; the speaker's is known.
    assert fr["query.unknown_names"] == en["query.unknown_names"] == 0.5


@pytest.mark.parametrize("question, expected", [
    ("Que pense Blinken de l'Ukraine ?", ["Blinken", "Ukraine"]),
    ("Je suis étudiante. Que dit Blinken du Sahel ?", ["Blinken", "Sahel"]),
    ("Who did Blinken meet? How does he describe him?", ["Blinken"]),
    ("Que pense M. Blinken du Sahel ?", ["Blinken", "Sahel"]),
    ("Has the U.S. Army left?", ["Army"]),
    ("Que dit Blinken du Sahel ? Pourquoi ?\nEt la Chine ?", ["Blinken", "Sahel", "Chine"])])
def test_a_name_is_a_capital_inside_a_sentence(question, expected):
    """Every sentence opens with a capital: a question of two sentences, or a follow-up read
    with the question before it, does not name its second sentence's first word."""
    from rag.lexical import names

    assert names(question) == expected


def test_a_passage_close_to_all_the_others_is_the_least_distinct():
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(50, 16))
    rows[7] = rows.mean(axis=0)  # the hub: near the centre of everything
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    whole = distinctness(rows.astype(np.float32))
    assert int(np.argmin(whole)) == 7
    assert np.all((whole >= 0) & (whole <= 2))
    # Computed in steps, as for a large corpus, it is the same.
    assert np.allclose(distinctness(rows.astype(np.float32), step=8), whole, atol=1e-6)
    assert distinctness(rows[:1].astype(np.float32)).tolist() == [1.0]


def test_a_passage_scores_its_closest_clause_or_itself():
    rng = np.random.default_rng(1)
    n, dim = 40, 8
    owners = np.sort(rng.integers(0, n, 90))
    owners = owners[owners != 3]  # passage 3 has no clauses
    clauses = rng.normal(size=(len(owners), dim)).astype(np.float16)
    passages = rng.normal(size=(n, dim)).astype(np.float32)
    query = rng.normal(size=dim).astype(np.float32)
    rows = np.searchsorted(owners, np.arange(n + 1))
    ids = np.concatenate([[3], rng.permutation(n)[:15]])
    got = closest_clause(clauses, rows, ids, query, passages[ids] @ query)
    for i, value in zip(ids, got, strict=True):
        own = [float(passages[i] @ query)]
        mine = [float(clauses[r].astype(np.float32) @ query) for r in np.flatnonzero(owners == i)]
        assert value == pytest.approx(max(own + mine), abs=1e-5)
    assert got[0] == pytest.approx(float(passages[3] @ query))


def test_the_multilingual_model_scores_clauses(engine):
    ids, signals, names = signal_matrix(engine, "Que fait-on au Sahel ?")
    clause = signals[:, names.index("multilingual.clause")]
    passage = signals[:, names.index("multilingual.passage")]
    assert np.all(clause >= passage - 1e-3) and np.any(clause > passage + 0.01)
    assert "dense.clause" not in names


def test_each_model_scores_how_distinct_a_passage_is(engine):
    ids, signals, names = signal_matrix(engine, "Que fait-on au Sahel ?")
    for name in ("dense.distinct", "multilingual.distinct"):
        column = signals[:, names.index(name)]
        assert np.all(column > 0) and column.std() > 0
