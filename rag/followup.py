"""Understand elliptic follow-ups ("et au Sahel ?") in the light of the previous question.

No language model: when a new question is short or opens like a follow-up, it is searched
together with the previous one, which supplies the subject it leaves out.
"""

from __future__ import annotations

import re

from .lexical import tokenize

_FOLLOW_UP = re.compile(
    r"^\s*(et|mais|puis|ensuite|aussi|and|but|also|what about|how about|same|idem|"
    r"qu'en est-il|quid|pour|concernant|sur|about|regarding|in|on)\b", re.IGNORECASE)


def is_follow_up(question: str) -> bool:
    """True for questions too short or too elliptic to stand on their own."""
    return len(tokenize(question)) <= 2 or bool(_FOLLOW_UP.match(question))


def contextualise(question: str, previous: str | None) -> str:
    """The text to search: the question itself, or the previous question and this one."""
    if previous and previous.strip() and is_follow_up(question):
        return f"{previous.strip()} {question.strip()}"
    return question
