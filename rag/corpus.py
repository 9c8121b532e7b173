"""What the index holds: documents (one per answer) and the passages cut from them."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .chunk import chunk_span
from .transcript import Transcript


@dataclass(frozen=True)
class Document:
    """One answer (or any retrievable unit) and the question it answers, as context."""

    id: int
    source: str
    turn: int
    question: str
    speaker: str
    date: str | None
    outlet: str | None
    start: int
    end: int
    question_start: int | None = None
    question_end: int | None = None


@dataclass(frozen=True)
class Passage:
    """A citable span of one document."""

    id: int
    doc: int
    text: str
    start: int
    end: int


@dataclass
class Corpus:
    documents: list[Document]
    passages: list[Passage]
    texts: dict[str, str]  # source -> full text, for citations and context

    def document_text(self, doc: Document) -> str:
        return self.texts[doc.source][doc.start:doc.end]

    def to_json(self) -> dict:
        return {"documents": [asdict(d) for d in self.documents],
                "passages": [[p.doc, p.start, p.end] for p in self.passages]}

    @classmethod
    def from_json(cls, data: dict, texts: dict[str, str]) -> Corpus:
        documents = [Document(**d) for d in data["documents"]]
        passages = []
        for i, (doc, start, end) in enumerate(data["passages"]):
            source = documents[doc].source
            passages.append(Passage(i, doc, texts[source][start:end], start, end))
        return cls(documents, passages, texts)


def corpus_from_transcripts(transcripts: list[Transcript], *, max_chars: int = 320,
                            min_chars: int = 60) -> Corpus:
    """Documents and passages for the answers of several transcripts."""
    corpus = Corpus([], [], {})
    for transcript in transcripts:
        corpus.texts[transcript.source] = transcript.text
        for turn in transcript.turns:
            add_document(corpus, Document(
                len(corpus.documents), transcript.source, turn.number, turn.question,
                turn.speaker, transcript.date, transcript.outlet, turn.start, turn.end,
                turn.question_start, turn.question_end), max_chars=max_chars, min_chars=min_chars)
    return corpus


def add_document(corpus: Corpus, doc: Document, *, max_chars: int, min_chars: int) -> None:
    """Append a document and its passages (its text must already be in corpus.texts)."""
    corpus.documents.append(doc)
    text = corpus.texts[doc.source]
    for a, b in chunk_span(text, doc.start, doc.end, max_chars=max_chars, min_chars=min_chars):
        corpus.passages.append(Passage(len(corpus.passages), doc.id, text[a:b], a, b))
