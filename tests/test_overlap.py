"""The engine's optional lexical signals, on the real transcript and engine: word-for-word
overlap (rag/overlap.py), BM25 over each document with its question, and BM25's saturation."""

import numpy as np
import pytest

from rag.lexical import BM25
from rag.overlap import PHRASE, SIGNALS, overlap, query_terms, spelling
from rag.retrieve import Weights, open_engine, signal_matrix

from .conftest import TRANSCRIPT


def flat(word: str) -> float:
    return 1.0


def test_spelling_folds_accents_and_splits_elisions():
    text = spelling("L'Ukraine et les États-Unis, aujourd'hui.")
    assert " ukraine " in text and " etats unis " in text
    assert " l " not in text and text.startswith(" ") and text.endswith(" ")


def test_a_question_keeps_its_names_numbers_and_content_words():
    terms = query_terms("Que dit Antony Blinken de l'Ukraine en 2021 et des États-Unis ?", flat,
                        frozenset({"antony", "blinken"}))
    assert terms.names == ("ukraine", "etats unis")  # the speaker's name selects nothing
    assert terms.numbers == ("2021",)
    assert "ukraine" in terms.words and "que" not in terms.words and "des" not in terms.words
    assert terms.tokens[:4] == ("que", "dit", "antony", "blinken")


def test_each_share_counts_what_the_text_repeats():
    terms = query_terms("Combien de soldats la France a-t-elle au Sahel en 2021 ?",
                        lambda w: 3.0 if w == "sahel" else 1.0)
    rows = overlap(terms, [spelling("La France garde ses soldats au Sahel en 2021."),
                           spelling("Le Sahel."), spelling("Rien à voir.")])
    words, names, numbers, phrase = (rows[:, SIGNALS.index(s)] for s in SIGNALS)
    # content words: combien, soldats, france, sahel (3.0): all but "combien" in the first
    assert words[0] == pytest.approx(5 / 6) and words[1] == pytest.approx(3 / 6)
    assert words[2] == 0
    assert names.tolist() == [1.0, 0.5, 0.0]  # France, Sahel
    assert numbers.tolist() == [1.0, 0.0, 0.0]
    assert phrase[0] == pytest.approx(4 / PHRASE)  # "au sahel en 2021"
    assert phrase[1] == 0 and phrase[2] == 0


WORDS = dict(zip("abcdefgx", ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf",
                               "xray"), strict=True))


@pytest.mark.parametrize("text, run", [
    ("a b c d e f g", 5), ("x a b c x d e f x", 3), ("b c x d e", 2), ("a x c x e", 0),
    ("g f e", 0), ("a b x c d e", 3), ("d e f g", 4)])
def test_the_longest_run_is_found_among_the_pairs(text, run):
    terms = query_terms(" ".join(WORDS[c] for c in "abcdefg"), flat)
    text = " ".join(WORDS[c] for c in text.split())
    assert overlap(terms, [spelling(text)])[0, SIGNALS.index("phrase")] == \
        pytest.approx(run / PHRASE)


def test_a_run_of_stop_words_alone_is_no_phrase():
    terms = query_terms("Qui est le président de la France ?", flat)
    phrase = SIGNALS.index("phrase")
    assert overlap(terms, [spelling("Le chef de la délégation.")])[0, phrase] == 0
    assert overlap(terms, [spelling("Le président de la France.")])[0, phrase] == 1.0
    assert overlap(terms, [spelling("Le président, de la France.")])[0, phrase] == 1.0


def test_a_question_with_nothing_to_look_for_scores_nothing():
    rows = overlap(query_terms("?", flat), [spelling(TRANSCRIPT.read_text(encoding="utf-8"))])
    assert rows.tolist() == [[0.0] * len(SIGNALS)]


def test_the_engine_adds_them_only_when_asked_or_weighted(engine):
    query = "Que dit-il de la lutte contre le terrorisme au Sahel ?"
    ids, signals, names = signal_matrix(engine, query)
    assert not any(n.startswith("overlap.") for n in names)  # the default weights leave them
    ids, signals, names = signal_matrix(engine, query, with_overlap=True)
    columns = signals[:, [names.index(f"overlap.{s}") for s in SIGNALS]]
    assert np.all((columns >= 0) & (columns <= 1))
    corpus = engine.index.corpus
    sahel = np.array(["Sahel" in corpus.document_text(corpus.documents[corpus.passages[i].doc])
                      for i in ids])
    words = columns[:, SIGNALS.index("words")]
    assert sahel.any() and words[sahel].min() > words[~sahel].max()
    weighted = Weights(rank=Weights().rank + (("overlap.phrase", 0.1),))
    assert weighted.uses("overlap.") and not Weights().uses("overlap.")


def test_title_and_text_bm25_is_there_when_weighted_or_asked(engine):
    query = "Que dit-il de la lutte contre le terrorisme au Sahel ?"
    assert "lexical.titled" not in signal_matrix(engine, query)[2]
    ids, signals, names = signal_matrix(engine, query, with_titled=True)
    corpus = engine.index.corpus
    table = BM25([f"{d.question or ''} {corpus.document_text(d)}" for d in corpus.documents])
    expected = table.scores(query, ignore=engine._speaker_terms)[engine._doc_of[ids]]
    got = signals[:, names.index("lexical.titled")]
    assert got == pytest.approx(expected, abs=1e-6) and got.max() > 0
    weighted = open_engine(engine.index, embedders=engine.embedders,
                           weights=Weights(rank=(("lexical.titled", 1.0),)))
    assert "lexical.titled" in signal_matrix(weighted, query)[2]


def test_bm25_saturation_is_a_setting_of_the_engine(engine):
    query = "Que dit-il de la lutte contre le terrorisme au Sahel ?"
    flat_tf = open_engine(engine.index, embedders=engine.embedders, k1=0.1)
    assert {t.k1 for t in flat_tf._bm25.values()} == {0.1}
    assert flat_tf.k1 == 0.1 and engine.k1 == 1.2
    ids, signals, names = signal_matrix(engine, query)
    other = signal_matrix(flat_tf, query)
    column = names.index("lexical.pair")
    assert np.array_equal(ids, other[0])
    assert not np.allclose(signals[:, column], other[1][:, column])
