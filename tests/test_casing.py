"""Questions typed in lower case or in capitals, as into a search box, read as typed normally."""

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


def test_a_sentence_capital_says_nothing_and_lower_case_wins_ties():
    casing = casing_of(["Paix et sécurité. Sécurité d'abord, dit-il à Paris.",
                        "La sécurité de Paris ; la paix."])
    assert casing.forms == {"paris": "Paris"}
    assert recase("paix et sécurité à paris", casing) == "Paix et sécurité à Paris"
    assert recase("", Casing()) == "" and recase("?", casing) == "?"


def test_a_question_typed_in_lower_case_or_capitals_gets_the_same_answer(engine):
    """Where the transcripts write every name the question uses, lower case and capitals give
    the answer the question typed normally gets, and the answer echoes it as typed."""
    casing = engine._casing
    questions = [g["question"] for g in read_gold(GOLD) if not g.get("previous")]
    restorable = [q for q in questions
                  if recase(q.lower(), casing) == q == recase(q.upper(), casing)]
    assert len(restorable) >= 30
    for question in restorable:
        typed = ask(engine, question)
        for other in (question.lower(), question.upper()):
            answer = ask(engine, other)
            assert answer.question == other
            assert (answer.abstained, answer.citations, answer.closest) == \
                (typed.abstained, typed.citations, typed.closest), other
