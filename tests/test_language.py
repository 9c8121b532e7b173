"""The language check behind message language and cross-lingual questions."""

from pathlib import Path

import pytest

from rag.language import language

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.mark.parametrize(("text", "lang"), [
    ("Que dit Blinken du Sahel ?", "fr"),
    ("Qu'est-ce que vous vous êtes dits avec Emmanuel Macron ?", "fr"),
    ("Je ne sais pas.", "fr"),
    ("What does Blinken say about the Sahel?", "en"),
    ("Was he speaking on Biden's behalf?", "en"),
    ("I don't know.", "en"),
    ("Tom is reading.", "en"),
])
def test_sentences(text, lang):
    assert language(text) == lang


def test_no_telltale_word_counts_as_french():
    assert language("Sahel") == language("") == language("🤝") == "fr"


@pytest.mark.skipif(not (DATA / "tatoeba.fra-eng.eng").exists(), reason="no Tatoeba data")
def test_short_everyday_sentences_in_both_languages():
    """Tatoeba's 1,000 pairs: mostly short sentences, the hardest case for a word count."""
    english = (DATA / "tatoeba.fra-eng.eng").read_text(encoding="utf-8").splitlines()
    french = (DATA / "tatoeba.fra-eng.fra").read_text(encoding="utf-8").splitlines()
    assert sum(language(s) == "en" for s in english) / len(english) >= 0.98
    assert sum(language(s) == "fr" for s in french) / len(french) >= 0.99
