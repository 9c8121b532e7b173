"""The transcript parser: the bundled interview, and malformed inputs that must name a line."""

import pytest

from rag import TranscriptFormatError, parse_transcript, read_transcript
from rag.chunk import chunk_span, clause_spans

from .conftest import TRANSCRIPT


def test_bundled_transcript_parses_into_five_answers():
    t = read_transcript(TRANSCRIPT, source="data/x.txt")
    assert (t.date, t.outlet) == ("2021-10", "France 2")
    assert [turn.number for turn in t.turns] == [1, 2, 3, 4, 5]
    assert {turn.speaker for turn in t.turns} == {"Antony Blinken"}
    assert t.turns[0].question.startswith("Est-ce vous avez compris")
    assert t.turns[2].question.startswith("Au Sahel")
    for turn in t.turns:
        assert t.text[turn.question_start:turn.question_end] == turn.question
        answer = t.text[turn.start:turn.end]
        assert answer[0] not in '" ' and answer[-1] not in '" '
        assert t.text[turn.start - 1] == '"'


def test_bundled_file_is_shipped_unchanged():
    shared = TRANSCRIPT.parents[2] / "shared" / "transcripts" / TRANSCRIPT.name
    if not shared.exists():
        pytest.skip("the shared corpus folder is not beside this checkout")
    assert TRANSCRIPT.read_bytes() == shared.read_bytes()


def test_passages_stay_inside_their_answer_and_cover_it():
    t = read_transcript(TRANSCRIPT)
    for turn in t.turns:
        spans = chunk_span(t.text, turn.start, turn.end)
        assert spans[0][0] == turn.start and spans[-1][1] == turn.end
        for a, b in spans:
            assert turn.start <= a < b <= turn.end
            assert b - a <= 400


def test_clauses_split_a_passage_at_its_commas_and_colons():
    text = "Au Sahel, il y a déjà un partenariat : nous allons faire plus, ensemble, là-bas."
    spans = clause_spans(text, 0, len(text))
    # Pieces of fewer than three words ("Au Sahel", "ensemble", "là-bas.") are left out.
    assert [text[a:b] for a, b in spans] == ["il y a déjà un partenariat",
                                              "nous allons faire plus"]
    assert clause_spans("One sentence, no.", 0, 17) == []
    assert clause_spans("Une seule phrase sans virgule.", 0, 30) == []
    t = read_transcript(TRANSCRIPT)
    for turn in t.turns:
        for a, b in chunk_span(t.text, turn.start, turn.end):
            for c, d in clause_spans(t.text, a, b):
                assert a <= c < d <= b and t.text[c:d] == t.text[c:d].strip()
                assert t.text[d - 1] not in ",;:"


GOOD = 'date 2021-10 France 2 : Question ?\n\nA. B : "Réponse."\n\nSuite ?\n\n"Autre réponse".\n'


@pytest.mark.parametrize("text, line", [
    ("Pas de métadonnées\n\n\"Réponse\"\n", 1),
    ('date 2021-10 France 2 : Question ?\n\n"Réponse jamais fermée\n', 3),
    ('date 2021-10 France 2 : Question ?\n\n"Réponse."\n\nQuestion seule ?\n', 5),
    ('date 2021-10 France 2 : Question ?\n\nAutre question ?\n', 3),
    ('date 2021-10 France 2 : Question ?\n\n"Réponse."\n\n"Réponse sans question".\n', 5),
    ('date 2021-10 France 2 : Question ?\n\n""\n', 3),
    ('date octobre France 2 : Question ?\n\n"Réponse."\n', 1),
    ('date 2021-13 France 2 : Question ?\n\n"Réponse."\n', 1),
    ("", None),
    ("   \n\n", None),
])
def test_malformed_transcripts_name_the_line(text, line):
    with pytest.raises(TranscriptFormatError) as err:
        parse_transcript(text.encode(), source="bad.txt")
    assert err.value.line == line
    assert "bad.txt" in str(err.value)


def test_two_interviews_run_together_are_refused_at_the_second_header():
    """Two files concatenated would otherwise give the second header as a question of the
    first interview, under the first one's date and outlet."""
    with pytest.raises(TranscriptFormatError, match="second `date` header") as err:
        parse_transcript((GOOD + "\n" + GOOD).encode(), source="bad.txt")
    assert err.value.line == GOOD.count("\n") + 2
    # a question that merely starts with the word is a question
    t = parse_transcript(GOOD + "\ndate de la visite : quand ?\n\n\"Demain.\"\n")
    assert t.turns[-1].question == "date de la visite : quand ?"


def test_invalid_utf8_and_nul_are_format_errors():
    with pytest.raises(TranscriptFormatError, match="UTF-8"):
        parse_transcript(GOOD.encode() + b"\xff\xfe")
    with pytest.raises(TranscriptFormatError, match="NUL"):
        parse_transcript(GOOD.replace("Suite", "Su\x00ite").encode())


@pytest.mark.parametrize("date", ["2021", "2021-10", "2021-10-05"])
def test_a_date_may_be_a_year_a_month_or_a_day(date):
    assert parse_transcript(GOOD.replace("2021-10", date)).date == date


def test_small_valid_transcript():
    t = parse_transcript(GOOD.encode())
    assert [turn.speaker for turn in t.turns] == ["A. B", "A. B"]
    assert [t.text[turn.start:turn.end] for turn in t.turns] == ["Réponse.", "Autre réponse"]


@pytest.mark.parametrize("opening, closing", [('"', "”"), ("“", '"'), ('"', '"'), ("«", "»")])
def test_a_straight_and_a_curly_quote_close_each_other(opening, closing):
    """An answer opened with one kind of double quote and closed with the other ends there:
    it does not run on and take the next question as the interviewee's words."""
    text = (f"date 2021-10 France 2 : Question ?\n\n{opening}Réponse un.{closing}\n\n"
            'Deuxième question ?\n\n"Réponse deux."\n')
    t = parse_transcript(text)
    assert [t.text[turn.start:turn.end] for turn in t.turns] == ["Réponse un.", "Réponse deux."]
    assert t.turns[1].question == "Deuxième question ?"


@pytest.mark.parametrize("raw", [None, 3, ["a list"]])
def test_a_transcript_that_is_not_text_is_a_format_error(raw):
    with pytest.raises(TranscriptFormatError, match="text or bytes"):
        parse_transcript(raw)
