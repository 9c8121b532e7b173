"""Term coverage: how much of a question the transcripts speak of, in either language."""

import numpy as np

from rag import MULTILINGUAL_MODEL
from rag.coverage import Coverage, content_words, corpus_words
from rag.retrieve import embed_queries, query_features


def test_content_words_drop_stop_words_numbers_and_elisions():
    assert content_words("Qu'a dit Blinken de l'AUKUS en 2021 ?") == ["blinken", "aukus"]
    assert content_words("What is the US position on it?") == ["position"]


def test_corpus_words_rank_the_most_widespread_first(engine):
    known, ranked = corpus_words(engine.index.corpus)
    assert set(ranked) == known  # the interview has far fewer words than the limit
    assert {"sahel", "désengagent", "coopération"} <= known
    assert "blinken" not in known  # the speaker's name is no word of the passages
    corpus = engine.index.corpus
    texts = [set(content_words(p.text)) for p in corpus.passages]
    texts += [set(content_words(d.question or "")) for d in corpus.documents]
    spread = [sum(w in t for t in texts) for w in ranked]
    assert spread == sorted(spread, reverse=True) and spread[0] > 2
    _, top = corpus_words(engine.index.corpus, limit=5)
    assert top == ranked[:5]


def test_a_word_of_the_transcript_counts_whole_in_any_question(engine):
    assert engine._coverage.score("Sahel coopération") == 1.0
    assert engine._coverage.score("Et depuis ?") == 1.0  # no content word: nothing foreign


def test_a_word_counts_whole_whatever_its_accents(engine):
    """The transcript writes "Etats-Unis"; a question may write "États-Unis" or "ETATS"."""
    coverage = engine._coverage
    assert "etats" in coverage.known and "états" not in coverage.known
    assert coverage.spelt("états") and coverage.spelt("etats")
    assert coverage.score("États-Unis coopération") == 1.0
    assert "états" not in coverage.unknown(["Les États-Unis ?"])


def test_an_english_word_finds_its_french_counterpart(engine):
    coverage = engine._coverage
    on_topic = coverage.score("Is the US disengaging and leaving France on the front line?")
    off_topic = coverage.score("Did Blinken mention trade tariffs between the EU and the US?")
    assert 0.0 < off_topic < on_topic < 1.0
    # The score is the mean best cosine, word by word, against the stored word vectors.
    use = engine.embedders[MULTILINGUAL_MODEL]
    words = coverage.words("tariffs disengaging")
    best = (use.embed_batch(words) @ coverage.vectors.T).max(axis=1)
    assert np.isclose(coverage.score("tariffs disengaging"), best.mean(), atol=1e-4)


def test_the_speaker_is_ignored_not_counted_foreign(engine):
    coverage = engine._coverage
    assert coverage.words("What did Antony Blinken say about the Sahel?") == ["sahel"]
    assert coverage.score("Antony Blinken Sahel") == 1.0


def test_words_embedded_with_the_questions_match_words_embedded_alone(engine):
    question = "Will Washington pledge zeppelins and marmalade to Mali?"
    fresh = Coverage(engine._coverage.known, engine._coverage.vectors,
                     engine.embedders[MULTILINGUAL_MODEL], engine._coverage.ignore)
    alone = fresh.score(question)
    words = engine._coverage.missing([question])
    assert {"zeppelins", "marmalade"} <= set(words) <= {"washington", "pledge", "zeppelins",
                                                         "marmalade", "mali"}
    embed_queries(engine, [question, "Et sur le plan militaire ?"])  # fills the cache
    assert engine._coverage.missing([question]) == []
    assert np.isclose(engine._coverage.score(question), alone, atol=1e-4)
    assert query_features(engine, question)["query.term_coverage"] == \
        engine._coverage.score(question)


def test_without_word_vectors_coverage_cannot_tell(engine):
    """An index built without the multilingual encoder: "tariffs" may be a translation of a
    word of the corpus, and the English MiniLM cannot say, so coverage stays neutral."""
    plain = Coverage(engine._coverage.known, np.zeros((0, 512), np.float32))
    assert plain.score("Sahel tariffs") == plain.score("Sahel") == 1.0
    assert plain.missing(["Sahel tariffs"]) == []
    assert plain.unknown(["Sahel tariffs"]) == ["tariffs"]


def test_an_index_without_the_multilingual_encoder_answers_with_neutral_coverage(scratch,
                                                                                  embedders):
    from rag import DEFAULT_MODEL, IndexSettings, ask, build, load_engine

    settings = IndexSettings(multilingual=False)
    build(scratch / "index", root=scratch, settings=settings,
          embedders={DEFAULT_MODEL: embedders[DEFAULT_MODEL]})
    engine = load_engine(scratch / "index", root=scratch, settings=settings)
    assert MULTILINGUAL_MODEL not in engine.embedders and not len(engine._coverage.vectors)
    assert query_features(engine, "What about tariffs?")["query.term_coverage"] == 1.0
    answer = ask(engine, "Que dit Blinken du Sahel ?")
    assert not answer.abstained and "Sahel" in answer.citations[0].text


def test_the_kept_word_vectors_stay_bounded(engine):
    """Questions full of new words (or nonsense) cannot grow the server's memory for ever."""
    from rag.coverage import CACHE_LIMIT

    fresh = Coverage(engine._coverage.known, engine._coverage.vectors,
                     engine.embedders[MULTILINGUAL_MODEL])
    for start in range(0, 3 * CACHE_LIMIT, 1000):
        words = [f"mot{i}" for i in range(start, start + 1000)]
        fresh.store(words, np.ones((len(words), 512), np.float32))
        assert len(fresh._cache) <= CACHE_LIMIT
    assert fresh.missing(["mot0 mot29999"]) == ["mot0"]  # the newest are kept
