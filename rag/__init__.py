"""Cited, extractive answers from interview transcripts.

    from rag import load_engine, ask
    engine = load_engine("index", rebuild=True)
    answer = ask(engine, "Que dit Blinken du Sahel ?")
    print(answer.answer, answer.citations[0].reference())
"""

from .answer import (
    MAX_K,
    MAX_QUESTION_CHARS,
    Answer,
    Citation,
    Request,
    ask,
    ask_many,
    clean_question,
)
from .embed import DEFAULT_MODEL, E5_MODEL, MULTILINGUAL_MODEL, Embedder, load_embedder
from .engine import build, default_sources, load_engine
from .errors import (
    IndexCorruptError,
    IndexMissingError,
    IndexStaleError,
    IndexWriteError,
    InputFileError,
    ModelError,
    QuestionError,
    RagError,
    TranscriptFormatError,
)
from .index import IndexSettings
from .retrieve import Engine, Hit, Weights, search, search_many
from .transcript import Transcript, Turn, parse_transcript, read_transcript

__all__ = [
    "DEFAULT_MODEL", "E5_MODEL", "MAX_K", "MAX_QUESTION_CHARS", "MULTILINGUAL_MODEL",
    "Answer", "Citation", "Embedder", "Engine", "Hit", "IndexSettings", "Request", "Transcript",
    "Turn",
    "Weights",
    "IndexCorruptError", "IndexMissingError", "IndexStaleError", "IndexWriteError",
    "InputFileError", "ModelError", "QuestionError", "RagError", "TranscriptFormatError",
    "ask", "ask_many", "build", "clean_question", "default_sources", "load_embedder", "load_engine",
    "parse_transcript", "read_transcript", "search", "search_many",
]
