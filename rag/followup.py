"""Understand elliptic follow-ups ("et au Sahel ?") in the light of the previous question.

No language model: when a new question is short or opens like a follow-up, it is searched
together with the previous one, which supplies the subject it leaves out. A question that asks
something of a subject it names ("Que dit Blinken du Sahel ?") stands alone, however short.
The follow-up's own words decide whether it is answered at all (`rag.retrieve.judged`).
"""

from __future__ import annotations

import re

from .lexical import tokenize

# Words that tie a question to the one before: always a follow-up.
_CONNECTIVE = re.compile(
    r"^\s*(et|mais|puis|ensuite|aussi|and|but|also|what about|how about|same|idem|"
    r"qu'en est-il|quid)\b", re.IGNORECASE)
# A topic with no question of its own ("Sur le Sahel ?", "About the troops?").
_TOPIC = re.compile(r"^\s*(pour|concernant|sur|about|regarding|in|on)\b", re.IGNORECASE)
# Something is asked: an interrogative word, or French subject inversion ("a-t-il").
_ASKS = re.compile(
    r"\b(que|qu'|quoi|comment|pourquoi|quels?|quelles?|combien|quand|où|qui|est-ce|lequel|"
    r"laquelle|what|how|why|which|when|where|who|whom|whose|do|does|did|is|are|was|were|"
    r"will|would|can|could|should|has|have|had)\b|\w-(t-)?(il|elle|ils|elles|on|vous|nous)\b",
    re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_][\w'’-]*")


def is_follow_up(question: str) -> bool:
    """True for questions too short or too elliptic to stand on their own."""
    if _CONNECTIVE.match(question):
        return True
    if _stands_alone(question):
        return False
    return len(tokenize(question)) <= 2 or bool(_TOPIC.match(question))


def _stands_alone(question: str) -> bool:
    """A question that asks something and names its subject: a name past the first word
    ("Blinken", "Sahel"), or three content words."""
    if not _ASKS.search(question):
        return False
    names = [w for w in _WORD.findall(question)[1:] if w[0].isupper()]
    return bool(names) or len(tokenize(question)) >= 3


def reading(question: str, previous: str | None) -> tuple[str, str | None]:
    """The text to search and, for a follow-up searched with the question before it, its own
    words (`rag.retrieve.search`'s `own`); None when the question stands alone."""
    if previous and previous.strip() and is_follow_up(question):
        return f"{previous.strip()} {question.strip()}", question
    return question, None


def contextualise(question: str, previous: str | None) -> str:
    """The text to search: the question itself, or the previous question and this one."""
    return reading(question, previous)[0]
