"""Questions typed in lower case, in capitals, without accents or with a slip, as into a search
box, read as typed normally."""

import re
import unicodedata

from rag import ask
from rag.evaluate import read_gold
from rag.respell import Spelling, respell, slip, spelling_of

from .conftest import GOLD


def test_the_transcripts_say_which_words_are_names(engine):
    spelling = engine._spelling
    assert respell("que dit blinken du sahel ?", spelling) == "Que dit Blinken du Sahel ?"
    assert respell("QUE DIT BLINKEN DU SAHEL ?", spelling) == "Que dit Blinken du Sahel ?"
    assert respell("what did blinken say about macron and le drian?", spelling) == \
        "What did Blinken say about Macron and le Drian?"
    assert respell("la coopération entre la france et les etats-unis", spelling) == \
        "La coopération entre la France et les Etats-Unis"
    # Acronyms typed alone or beside one other word stay as they are.
    assert respell("AUKUS", spelling) == "AUKUS"
    assert respell("NATO budget", spelling) == "NATO budget"


def test_a_french_question_typed_without_accents_gets_the_transcripts_accents(engine):
    spelling = engine._spelling
    assert respell("Que dit Blinken de la securite ?", spelling) == \
        "Que dit Blinken de la sécurité ?"
    assert respell("les americains ont-ils trahi la france ?", spelling) == \
        "Les Américains ont-ils trahi la France ?"
    # "a" and "ou" are words of the interview as written: they stay, whatever was meant.
    assert respell("Il a ete a Paris ou a Londres ?", spelling) == "Il a été a Paris ou a Londres ?"
    # An English question keeps its English spelling of words French writes with accents.
    assert respell("What about cooperation with the president?", spelling) == \
        "What about cooperation with the president?"


def test_a_slip_of_the_keyboard_is_read_as_the_word_meant(engine):
    spelling = engine._spelling
    assert respell("Que dit Blinekn du Shael ?", spelling) == "Que dit Blinken du Sahel ?"
    assert respell("what did blinekn say about macrn?", spelling) == \
        "What did Blinken say about Macron?"
    assert slip("coopératoin", spelling) == "coopération"  # two letters swapped
    assert slip("Sahwl", spelling) == "Sahel"  # w is beside e on the keyboard
    assert slip("Sahpl", spelling) is None  # p is not
    # Another form of a word is not a slip: another ending, another inner vowel.
    for other in ("américain", "franco", "laissant", "parle"):
        assert slip(other, spelling) is None, other
    # Short words, words of the transcripts and words far from any are left alone.
    assert slip("Sahl", spelling) is None and slip("Sahel", spelling) is None
    assert slip("tariffs", spelling) is None


def test_no_gold_question_has_a_word_taken_for_a_slip(engine):
    """The gold questions are typed with care: reading none of their words as a slip is the
    check that real words are not "corrected" into the transcripts' ones."""
    from .conftest import NEAR, UNSEEN

    for path in (GOLD, UNSEEN, NEAR):
        for item in read_gold(path):
            for word in re.findall(r"[^\W\d_]+", item["question"]):
                assert slip(word, engine._spelling) is None, (word, item["question"])


def test_of_two_words_as_close_the_more_used_is_meant_and_of_two_as_used_neither():
    spelling = spelling_of(["Le carton et le canton."])
    assert slip("caton", spelling) is None  # one letter from both, used as often
    assert slip("canon", spelling) == "canton"  # one letter from "canton" only
    assert slip("cartom", spelling) is None  # the last letter differs
    spelling = spelling_of(["Le carton, le carton et le canton."])
    assert slip("caton", spelling) == "carton"


def test_a_sentence_capital_says_nothing_and_lower_case_wins_ties():
    spelling = spelling_of(["Paix et sécurité. Sécurité d'abord, dit-il à Paris.",
                        "La sécurité de Paris ; la paix."])
    assert spelling.forms == {"paris": "Paris"}
    assert respell("paix et sécurité à paris", spelling) == "Paix et sécurité à Paris"
    assert spelling.accents == {"securite": "sécurité"}
    assert respell("la securite", spelling) == "La securite"  # no language given: no accents
    assert respell("", Spelling()) == "" and respell("?", spelling) == "?"


def _bare(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text)
                   if not unicodedata.combining(c))


def test_a_question_typed_in_lower_case_capitals_or_without_accents_gets_the_same_answer(
        engine):
    """Where the transcripts write every name (or accented word) the question uses, lower
    case and capitals (or no accents) give the answer the question typed normally gets, and
    the answer echoes the question as typed."""
    spelling = engine._spelling
    questions = [g["question"] for g in read_gold(GOLD) if not g.get("previous")]
    cases = [(q, other) for q in questions for other in (q.lower(), q.upper())
             if respell(q.lower(), spelling) == q == respell(q.upper(), spelling)]
    accents = [(q, _bare(q)) for q in questions if _bare(q) != q == respell(_bare(q), spelling)]
    assert len(cases) >= 60 and len(accents) >= 3
    for question, other in cases + accents:
        typed, answer = ask(engine, question), ask(engine, other)
        assert answer.question == other
        assert (answer.abstained, answer.citations, answer.closest) == \
            (typed.abstained, typed.citations, typed.closest), other
