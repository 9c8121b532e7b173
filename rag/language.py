"""Which language a text is in: French or English, the two the product is asked in.

A count of telltale words is enough for what depends on it: the language of a message, and
whether a question is asked across languages (English about French text), where the
question's words are not expected in the transcript. Function words, pronouns, contractions
and a few word endings tell even a short sentence; a bare list of keywords may tell nothing.
"""

from __future__ import annotations

import re

from .lexical import ELISION, nfc

_FRENCH_HINT = re.compile(
    r"[àâçéèêëîïôûùüÿœ]"
    r"|\b(?:le|la|les|des|est|que|qui|une|un|du|au|aux|et|quel|quelle|quels|quelles|pourquoi|"
    r"comment|vous|il|elle|ils|sur|dans|pour|avec|par|ce|cette|ces|son|sa|ses|leur|leurs|ne|"
    r"pas|en|se|y|je|tu|nous|mon|ma|mes|ton|ta|tes|notre|nos|votre|vos|suis|sont|très)\b"
    r"|\w(?:eux|aux|ment)\b",
    re.IGNORECASE)
_ENGLISH_HINT = re.compile(
    r"\b(?:the|what|which|who|whom|whose|why|how|when|where|is|are|was|were|be|been|did|does|"
    r"do|has|have|had|about|of|and|with|to|in|on|for|from|by|between|he|his|she|her|they|"
    r"their|it|its|this|that|these|those|will|would|can|could|should|us|you|your|not|any|an|"
    r"i|me|my|we|our|him|them|there|here|at|than|no|yes|please|very|all|some|now|like)\b"
    r"|\w(?:ing|ship|ness|ed|ly)\b"
    r"|n['’]t\b|\w['’](?:s|ll|re|ve|m|d)\b",
    re.IGNORECASE)


def language(text: str) -> str:
    """'fr' or 'en'; a text with no telltale word, or as many of each, counts as French."""
    text = nfc(text)
    french = len(_FRENCH_HINT.findall(text)) + len(ELISION.findall(text))
    return "fr" if french >= len(_ENGLISH_HINT.findall(text)) else "en"
