"""Compose the answer: verbatim quotes of the retrieved passages with numbered citations, or an
abstention when nothing in the transcripts addresses the question."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from .errors import QuestionError
from .followup import reading
from .language import language
from .lexical import STOP_WORDS
from .retrieve import Engine, Hit, Weights, certainty, search, search_many, select_sources

MAX_QUESTION_CHARS = 1000
MAX_K = 20
RELATIVE_CUT = 0.08  # a further quote must score within this of the best one
WEAK_MATCH = 0.5  # an answer whose confidence is below this is shown as a weak match
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u2028\u2029]")
# Unicode's default-ignorable code points (soft hyphen, joiners, direction marks, variation
# selectors, tags...) and the interlinear annotation marks: nothing a reader sees. They are
# dropped, so that "inter\u00adview" still reads "interview", and alone they make no question.
INVISIBLE = ("\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
             "\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb"
             "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff")
_INVISIBLE = re.compile(f"[{INVISIBLE}]")
_MARKUP = re.compile(r"<[^<>]{0,500}>|!?\[([^\]]{0,500})\]\([^()]{0,500}\)")


@dataclass(frozen=True)
class Citation:
    n: int
    text: str
    start: int
    end: int
    source: str
    speaker: str
    question: str
    date: str | None
    outlet: str | None
    score: float
    answer: int  # the answer's number in its transcript, from 1

    def reference(self) -> str:
        """A reference a researcher can paste."""
        parts = [self.speaker]
        if self.outlet:
            parts.append(f"interview with {self.outlet}")
        if self.date:
            parts.append(self.date)
        parts += [f"answer {self.answer}", f"chars {self.start}\u2013{self.end}"]
        return ", ".join(parts)


@dataclass(frozen=True)
class Answer:
    question: str
    abstained: bool
    answer: str
    citations: list[Citation]
    searched: str = ""  # the text actually searched (differs for follow-ups)
    closest: list[Citation] = field(default_factory=list)  # offered when abstaining
    # How likely the first citation (or closest passage) comes from the answer asked about:
    # the abstention margin and the best answer's lead as a calibrated probability
    # (`certainty`); None without one.
    confidence: float | None = None

    @property
    def weak(self) -> bool:
        """An answer given, but less likely right than wrong: the reader should check it."""
        return not self.abstained and self.confidence is not None \
            and self.confidence < WEAK_MATCH

    @property
    def answers_quoted(self) -> int:
        """How many of the interview's answers its citations come from: a weak match quoting
        two is most often a close call between them (docs/quality.md, "Confidence")."""
        return len({(c.source, c.answer) for c in self.citations})

    def to_dict(self) -> dict:
        """The stable JSON contract."""
        return {
            "question": self.question,
            "abstained": self.abstained,
            "answer": self.answer,
            "citations": [asdict(c) for c in self.citations],
            "searched": self.searched,
            "closest": [asdict(c) for c in self.closest],
            "confidence": self.confidence,
        }


def clean_question(question: object, *, name: str = "question") -> str:
    """The question as searched: NFC, control and invisible characters out; or a
    QuestionError (`name` says which text it is about). The limit counts characters as sent
    (code points, as JSON Schema's `maxLength` counts them), so the library, the command line
    and the HTTP API's published schema refuse the same texts."""
    if not isinstance(question, str):
        raise QuestionError(f"the {name} must be text")
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionError(f"the {name} is too long ({len(question)} characters; "
                            f"the limit is {MAX_QUESTION_CHARS})")
    question = cleaned(question)
    if not question:
        raise QuestionError(f"the {name} is empty")
    return question


def clean_previous(previous: object) -> str | None:
    """The previous question as read for a follow-up: None when absent or blank (no
    context), or a QuestionError when it is not text or is too long, as a question is."""
    if previous is None:
        return None
    if isinstance(previous, str) and len(previous) <= MAX_QUESTION_CHARS \
            and not cleaned(previous):
        return None
    return clean_question(previous, name="previous question")


def cleaned(text: str) -> str:
    """`text` as a question is read: lone surrogates as "?", NFC, control characters as
    spaces, invisible ones dropped, trimmed."""
    text = text.encode("utf-8", "replace").decode("utf-8")
    text = _CONTROL.sub(" ", unicodedata.normalize("NFC", text))
    return _INVISIBLE.sub("", text).strip()


def ask(engine: Engine, question: str, *, k: int = 3, previous: str | None = None,
        sources: Iterable[str] | None = None) -> Answer:
    """Answer a question from the index: quotes with citations, or an abstention.

    Args:
        k: the most citations to give (1 to 20).
        previous: the conversation's previous question, used when this one is elliptic.
        sources: only these transcripts, named as citations name them (default: all);
            an unknown name is a QuestionError.
    """
    question, searched, own = _prepare(question, k, previous)
    return _compose(question, searched,
                    search(engine, searched, k=max(k, 3), sources=sources, own=own), k,
                    engine.weights)


@dataclass(frozen=True)
class Request:
    """One question for `ask_many`, with `ask`'s options."""

    question: str
    k: int = 3
    previous: str | None = None
    sources: Iterable[str] | None = None

    def __post_init__(self):  # read more than once: a generator would be empty the second time
        if self.sources is not None and not isinstance(self.sources, str | bytes):
            try:
                object.__setattr__(self, "sources", tuple(self.sources))
            except TypeError:
                pass  # not a list: refused as the question's error when it is answered


def ask_many(engine: Engine, requests: Iterable[Request | str]) -> list[Answer | QuestionError]:
    """Answer several questions at once, embedding them in one batch per model.

    Each request is a Request, or a question's text alone (`ask`'s defaults). Gives what `ask`
    would for each, in order; a question `ask` would refuse gets its QuestionError in its
    place, without failing the others.
    """
    if isinstance(requests, str):
        raise QuestionError("ask_many takes a list of questions; use ask for one")
    requests = [Request(r) if isinstance(r, str) else r for r in requests]
    prepared: list[tuple[str, str, str | None] | QuestionError] = []
    for r in requests:
        if not isinstance(r, Request):
            prepared.append(QuestionError("each request is a Request or a question's text"))
            continue
        try:
            item = _prepare(r.question, r.k, r.previous)
            select_sources(engine, r.sources)
            prepared.append(item)
        except QuestionError as exc:
            prepared.append(exc)
    valid = [i for i, p in enumerate(prepared) if not isinstance(p, QuestionError)]
    depth = max([max(requests[i].k, 3) for i in valid], default=3)
    found = search_many(engine, [prepared[i][1] for i in valid], k=depth,
                        sources=[requests[i].sources for i in valid],
                        own=[prepared[i][2] for i in valid])
    out: list[Answer | QuestionError] = list(prepared)
    for i, hits in zip(valid, found, strict=True):
        question, searched, _ = prepared[i]
        out[i] = _compose(question, searched, hits[:max(requests[i].k, 3)], requests[i].k,
                          engine.weights)
    return out


def ranked(engine: Engine, answer: Answer, *, k: int) -> list[Hit]:
    """The passages `ask` ranked for `answer`, `k` deep: what a ranking is scored on."""
    plain = _plain(answer.question)
    own = plain if answer.searched != plain else None
    return search(engine, answer.searched, k=k, own=own)


def _prepare(question: object, k: object, previous: object) -> tuple[str, str, str | None]:
    """The cleaned question, the text to search for it and, for a follow-up searched with the
    question before it, its own words (else None); or a QuestionError."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise QuestionError(f"k must be a whole number from 1 to {MAX_K}")
    question = clean_question(question)
    previous = clean_previous(previous)
    return question, *reading(_plain(question), _plain(previous) if previous else None)


def _compose(question: str, searched: str, hits: list[Hit], k: int,
             weights: Weights) -> Answer:
    content = _has_content(searched)
    sure = (round(certainty(hits[0].confidence, weights, hits[0].lead), 3)
            if hits and content else None)
    if not hits or hits[0].confidence <= 0 or not content:
        closest = _citations(hits[:k])
        message = ("L'entretien ne répond pas à cette question."
                   if language(question) == "fr"
                   else "The interview does not address this question.")
        return Answer(question, True, message, [], searched, closest, sure)
    # Keep the passages that score close to the best one: a second quote only when it helps.
    kept = [h for h in hits[:k] if h.confidence > 0 and h.score >= hits[0].score - RELATIVE_CUT]
    citations = _citations(kept)
    text = "\n".join(f"\u201c{c.text}\u201d [{c.n}]" for c in citations)
    return Answer(question, False, text, citations, searched, [], sure)


def _plain(text: str) -> str:
    """The words of a question without HTML tags or Markdown link syntax around them."""
    return _MARKUP.sub(lambda m: f" {m.group(1) or ''} ", text).strip() or text


def _has_content(text: str) -> bool:
    words = re.findall(r"\w+", text.lower())
    return any(w not in STOP_WORDS for w in words)


def _citations(hits: list[Hit]) -> list[Citation]:
    return [Citation(n, h.passage.text, h.passage.start, h.passage.end, h.document.source,
                     h.document.speaker, h.document.question, h.document.date,
                     h.document.outlet, round(h.score, 4), h.document.turn)
            for n, h in enumerate(hits, start=1)]
