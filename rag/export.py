"""Export a sentence-transformers model to ONNX once, so questions are embedded without torch.

Importing torch and transformers alone takes seconds, and a one-question forward pass through
them costs ~20 ms of framework overhead. The export (torch, a few seconds) runs the first time
a model is used with an ONNX backend and is kept in a cache folder; afterwards the model loads
in a fraction of a second with ONNX Runtime and the `tokenizers` library. `quantize` stores
int8 weights (dynamic, per output channel), which again halves the cost of a question for
vectors within ~0.99 cosine of the originals (measured in docs/performance.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from .errors import RagError

EXPORT_VERSION = 1
POOLINGS = ("mean", "cls")


@dataclass(frozen=True)
class Exported:
    """An exported model: `model.onnx` and `tokenizer.json` in `folder`, and how to pool."""

    folder: Path
    pooling: str
    max_length: int
    dim: int
    inputs: tuple[str, ...]
    quantized: bool

    @property
    def onnx(self) -> Path:
        return self.folder / "model.onnx"

    @property
    def tokenizer(self) -> Path:
        return self.folder / "tokenizer.json"


def default_cache_dir() -> Path:
    """Where exported models are kept unless the caller says otherwise."""
    return Path.home() / ".cache" / "rag" / "models"


CONTENT_FILES = (".safetensors", ".bin", ".json", ".txt", ".model")  # what a model is made of
CONTENTS = "contents.json"  # in the cache folder: each file's digest by path, size and time


def _key(location: str, cache_dir: Path) -> str:
    """Names the model's contents, not where they lie: the same weights installed again, in
    another environment or checkout, find the export already made (each install otherwise
    left another copy of the model behind), while replaced weights are exported anew.

    A file's digest is read once and remembered in the cache folder under its path, size and
    modification time, so later starts only look at the files' sizes and times.
    """
    digest = hashlib.sha256()
    path = Path(location)
    if not path.is_dir():  # a hub name: its files are the hub cache's business
        digest.update(location.encode())
        return digest.hexdigest()[:12]
    memo_file = cache_dir / CONTENTS
    try:
        memo = json.loads(memo_file.read_text(encoding="utf-8"))
        memo = memo if isinstance(memo, dict) else {}
    except (OSError, ValueError):
        memo = {}
    changed = False
    files = sorted(f for f in path.rglob("*") if f.suffix in CONTENT_FILES and f.is_file())
    for file in files:
        stat = file.stat()
        stamp = f"{file.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
        found = memo.get(stamp)
        if not isinstance(found, str):
            try:
                with open(file, "rb") as handle:
                    found = memo[stamp] = hashlib.file_digest(handle, "sha256").hexdigest()
                changed = True
            except OSError:  # unreadable here: its place stands for it, as loading it will tell
                found = stamp
        digest.update(f"{file.relative_to(path).as_posix()}:{found}\n".encode())
    if changed:
        _remember(memo_file, memo)
    return digest.hexdigest()[:12]


def _remember(memo_file: Path, memo: dict) -> None:
    """Write the digests in one rename, without those of files no longer there (a removed
    environment's); a cache folder that cannot be written only costs reading the files again
    next time."""
    kept = {k: v for k, v in memo.items() if Path(k.rsplit(":", 2)[0]).exists()}
    temporary = None
    try:
        memo_file.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=".contents-", dir=memo_file.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(kept, out)
        os.replace(temporary, memo_file)
    except OSError:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)


def _drop_stale(cache_dir: Path, slug: str, kind: str, kept: Path) -> None:
    """Remove the other exports of this model and kind made from a folder that is gone (a
    removed environment, an older release of the model): nothing can find them again but the
    same files reinstalled, which are exported anew. Run only after an export, which is rare."""
    pattern = re.compile(re.escape(slug) + r"-[0-9a-f]{12}-v\d+-" + re.escape(kind))
    for other in cache_dir.iterdir():
        if other == kept or not pattern.fullmatch(other.name) or not other.is_dir():
            continue
        try:
            source = json.loads((other / "export.json").read_text(encoding="utf-8"))["source"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # damaged or half-made: `exported` names it when it is asked for
        if isinstance(source, str) and os.path.isabs(source) and not Path(source).exists():
            shutil.rmtree(other, ignore_errors=True)


def exported(model: str, location: str, *, quantize: bool = True,
             cache_dir: Path | None = None) -> Exported:
    """The ONNX export of a model (`location`: its folder or hub name), made on first use."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model)[-60:]
    kind = "int8" if quantize else "fp32"
    folder = cache_dir / f"{slug}-{_key(location, cache_dir)}-v{EXPORT_VERSION}-{kind}"
    if not (folder / "export.json").exists():
        _export(location, folder, quantize=quantize)
        _drop_stale(cache_dir, slug, kind, folder)
    try:
        meta = json.loads((folder / "export.json").read_text(encoding="utf-8"))
        return Exported(folder, meta["pooling"], int(meta["max_length"]), int(meta["dim"]),
                        tuple(meta["inputs"]), bool(meta["quantized"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RagError(f"the exported model in {folder} is damaged ({type(exc).__name__}); "
                       "delete that folder to export it again") from None


def _export(location: str, folder: Path, *, quantize: bool) -> None:
    """Export with torch into a temporary folder, then move it into place in one rename."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(location, device="cpu")
    modules = [type(m).__name__ for m in st]
    pooling = st[1].get_config_dict().get("pooling_mode") if len(st) > 1 else None
    if modules[:2] != ["Transformer", "Pooling"] or pooling not in POOLINGS \
            or not getattr(st[0].tokenizer, "is_fast", False) \
            or any(m not in ("Normalize",) for m in modules[2:]):
        raise RagError(f"{location} cannot be exported to ONNX (modules {modules}, pooling "
                       f"{pooling!r}); use the torch backend for it")
    tokenizer = st[0].tokenizer
    inputs = tuple(k for k in ("input_ids", "attention_mask", "token_type_ids")
                   if k in tokenizer("a"))
    network = st[0].auto_model.eval()

    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.network = network

        def forward(self, *tensors):
            return self.network(**dict(zip(inputs, tensors, strict=True))).last_hidden_state

    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=folder.parent))
    try:
        sample = tokenizer(["a short text", "and a somewhat longer one"], padding=True,
                           return_tensors="pt")
        axes = {"batch": 0, "tokens": 1}
        dynamic = {name: {v: k for k, v in axes.items()} for name in (*inputs, "hidden")}
        plain = work / "plain.onnx"
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on shapes it keeps dynamic
            torch.onnx.export(Encoder(), tuple(sample[k] for k in inputs), str(plain),
                              input_names=list(inputs), output_names=["hidden"],
                              dynamic_axes=dynamic, opset_version=17, dynamo=False)
        if quantize:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            logging.disable(logging.WARNING)  # its advice to pre-process image models
            try:
                quantize_dynamic(str(plain), str(work / "model.onnx"),
                                 weight_type=QuantType.QInt8, per_channel=True,
                                 reduce_range=True, op_types_to_quantize=["MatMul"])
            finally:
                logging.disable(logging.NOTSET)
            plain.unlink()
        else:
            plain.rename(work / "model.onnx")
        tokenizer.backend_tokenizer.save(str(work / "tokenizer.json"))
        meta = {"source": location, "pooling": pooling, "max_length": int(st.max_seq_length),
                "dim": int(_dimension(st)), "inputs": list(inputs),
                "quantized": quantize, "version": EXPORT_VERSION}
        (work / "export.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        try:
            os.rename(work, folder)
        except OSError:
            if not (folder / "export.json").exists():  # not another process's finished export
                raise
    except OSError as exc:
        raise RagError(f"cannot write the exported model under {folder.parent}: "
                       f"{exc.strerror}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _dimension(st) -> int:
    get = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
    return get()
