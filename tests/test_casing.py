"""Questions typed in lower case or in capitals, as into a search box, read as typed normally."""

import unicodedata

from rag import ask
from rag.casing import Casing, casing_of, recase
from rag.evaluate import read_gold

from .conftest import GOLD


def test_the_transcripts_say_which_words_are_names(engine):
    casing = engine._casing
    assert recase("que dit blinken du sahel ?", casing) == "Que dit Blinken du Sahel ?"
    assert recase("QUE DIT BLINKEN DU SAHEL ?", casing) == "Que dit Blinken du Sahel ?"
    assert recase("what did blinken say about macron and le drian?", casing) == \
        "What did Blinken say about Macron and le Drian?"
    assert recase("la coopération entre la france et les etats-unis", casing) == \
        "La coopération entre la France et les Etats-Unis"
    # Acronyms typed alone or beside one other word stay as they are.
    assert recase("AUKUS", casing) == "AUKUS" and recase("NATO budget", casing) == "NATO budget"


def test_a_french_question_typed_without_accents_gets_the_transcripts_accents(engine):
    casing = engine._casing
    assert recase("Que dit Blinken de la securite ?", casing) == \
        "Que dit Blinken de la sécurité ?"
    assert recase("les americains ont-ils trahi la france ?", casing) == \
        "Les Américains ont-ils trahi la France ?"
    # "a" and "ou" are words of the interview as written: they stay, whatever was meant.
    assert recase("Il a ete a Paris ou a Londres ?", casing) == "Il a été a Paris ou a Londres ?"
    # An English question keeps its English spelling of words French writes with accents.
    assert recase("What about cooperation with the president?", casing) == \
        "What about cooperation with the president?"


def test_a_sentence_capital_says_nothing_and_lower_case_wins_ties():
    casing = casing_of(["Paix et sécurité. Sécurité d'abord, dit-il à Paris.",
                        "La sécurité de Paris ; la paix."])
    assert casing.forms == {"paris": "Paris"}
    assert recase("paix et sécurité à paris", casing) == "Paix et sécurité à Paris"
    assert casing.accents == {"securite": "sécurité"}
    assert recase("la securite", casing) == "La securite"  # no language given: no accents
    assert recase("", Casing()) == "" and recase("?", casing) == "?"


def _bare(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text)
                   if not unicodedata.combining(c))


def test_a_question_typed_in_lower_case_capitals_or_without_accents_gets_the_same_answer(
        engine):
    """Where the transcripts write every name (or accented word) the question uses, lower
    case and capitals (or no accents) give the answer the question typed normally gets, and
    the answer echoes the question as typed."""
    casing = engine._casing
    questions = [g["question"] for g in read_gold(GOLD) if not g.get("previous")]
    cases = [(q, other) for q in questions for other in (q.lower(), q.upper())
             if recase(q.lower(), casing) == q == recase(q.upper(), casing)]
    accents = [(q, _bare(q)) for q in questions if _bare(q) != q == recase(_bare(q), casing)]
    assert len(cases) >= 60 and len(accents) >= 3
    for question, other in cases + accents:
        typed, answer = ask(engine, question), ask(engine, other)
        assert answer.question == other
        assert (answer.abstained, answer.citations, answer.closest) == \
            (typed.abstained, typed.citations, typed.closest), other
