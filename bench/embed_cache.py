"""Embeddings kept on disk between benchmark runs, one vector per (model, text).

Encoding PIAF with both models takes many minutes on two cores; keyed by a hash of the model
name, how it runs (backend, int8 or not) and each text, a rerun, a smaller --limit or a new
chunking re-encodes only what is new.
Each batch of new vectors is written as its own shard, so an interrupted run keeps its work.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import numpy as np

CACHE = Path(os.environ.get("RAG_BENCH_CACHE", Path(__file__).resolve().parent / ".cache"))


def text_key(model: str, text: str) -> str:
    return hashlib.sha1(f"{model}\0{text}".encode()).hexdigest()


class CachedEmbedder:
    """An embedder that asks the wrapped one only for texts it has never seen."""

    def __init__(self, embedder, folder: Path = CACHE, shard_size: int = 512):
        self.inner = embedder
        self.name = embedder.name
        self.dim = embedder.dim
        how = f"{type(embedder).__name__}|{getattr(embedder, 'quantize', '')}"
        self.ident = f"{embedder.name}|{how}"
        self.folder = Path(folder) / hashlib.sha1(self.ident.encode()).hexdigest()[:12]
        self.shard_size = shard_size
        self.vectors: dict[str, np.ndarray] = {}
        for shard in sorted(self.folder.glob("*.npz")):
            with np.load(shard) as data:
                self.vectors.update(zip(data["keys"].tolist(), data["vectors"], strict=True))

    @property
    def poolable(self) -> bool:
        return getattr(self.inner, "poolable", False)

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        return self._lookup("vector", texts, self.inner.embed_batch, self.dim)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Questions, for a model that reads them its own way (kept apart from its texts)."""
        if not hasattr(self.inner, "embed_queries"):
            return self.embed_batch(texts)
        return self._lookup("query", texts, self.inner.embed_queries, self.dim)

    def embed_pooled(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token sums and counts, kept side by side in one row."""
        def compute(part):
            sums, counts = self.inner.embed_pooled(part)
            return np.concatenate([sums, counts[:, None]], axis=1)

        rows = self._lookup("pooled", texts, compute, self.dim + 1)
        return rows[:, :-1], rows[:, -1]

    def _lookup(self, kind: str, texts: list[str], compute, width: int) -> np.ndarray:
        keys = [text_key(f"{self.ident}|{kind}", t) for t in texts]
        todo = sorted({k: t for k, t in zip(keys, texts, strict=True)
                       if k not in self.vectors}.items())
        for i in range(0, len(todo), self.shard_size):
            part = todo[i:i + self.shard_size]
            vectors = compute([t for _, t in part])
            self.vectors.update(zip([k for k, _ in part], vectors, strict=True))
            self._save([k for k, _ in part], vectors)
        if not texts:
            return np.zeros((0, width), np.float32)
        return np.stack([self.vectors[k] for k in keys]).astype(np.float32)

    def _save(self, keys: list[str], vectors: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{uuid.uuid4().hex}.tmp.npz"
        np.savez(tmp, keys=np.array(keys), vectors=vectors.astype(np.float32))
        os.replace(tmp, self.folder / f"{uuid.uuid4().hex}.npz")


def cached(embedder, enabled: bool = True):
    """The embedder behind the disk cache, unless caching is turned off."""
    return CachedEmbedder(embedder) if enabled else embedder
