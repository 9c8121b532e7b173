"""Open an engine over an index folder: load it, or build it when it is missing or stale."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .embed import Embedder
from .errors import IndexCorruptError, IndexMissingError, IndexStaleError, RagError
from .index import (
    Index,
    IndexSettings,
    build_index,
    load_index,
    read_manifest,
    recorded_settings,
)
from .lexical import K1
from .retrieve import Engine, Weights, open_engine


def default_sources(root: Path) -> list[Path]:
    """The transcripts shipped under `data/` of a project root."""
    return sorted((root / "data").glob("*.txt"))


def load_engine(index_dir: str | Path = "index", *, root: str | Path | None = None,
                sources: list[str | Path] | None = None,
                settings: IndexSettings | None = None, weights: Weights | None = None,
                k1: float = K1, rebuild: bool = False,
                progress: Callable[[str, int], Callable[[int], None]] | None = None,
                on_rebuild: Callable[[str], None] | None = None,
                cache_dir: str | Path | None = None) -> Engine:
    """An engine ready to answer.

    Args:
        index_dir: the index folder; `root` (default: its parent) is what citation paths are
            relative to.
        sources: transcripts; default: those the index was built from, or `ROOT/data/*.txt`.
        settings: what the index must be built with; default: whatever it was built with
            (a rebuild keeps them where the manifest can be read, else takes the defaults).
        rebuild: build the index when it is missing, stale or damaged (else raise).
        on_rebuild: told why a rebuild happens.
        cache_dir: where models exported to ONNX are kept (default ~/.cache/rag/models).
        weights, k1: the fusion and abstention weights, and BM25's saturation, as fitted
            together (the defaults for interviews; docs/quality-piaf.md for encyclopedic text).
    """
    index_dir = Path(index_dir)
    root = Path(root) if root is not None else index_dir.resolve().parent
    if isinstance(sources, str | Path):  # one transcript, not the letters of its name
        sources = [sources]
    paths = [Path(s) if Path(s).is_absolute() else root / s for s in sources] \
        if sources is not None else None
    embedders: dict[str, Embedder] = {}
    try:
        index = load_index(index_dir, root=root, sources=paths, settings=settings)
    except (IndexMissingError, IndexStaleError, IndexCorruptError) as exc:
        if not rebuild:
            raise
        if on_rebuild:
            on_rebuild(str(exc))
        settings = settings or _built_with(index_dir)
        index = build(index_dir, root=root, sources=paths, settings=settings,
                      embedders=embedders, progress=progress, cache_dir=cache_dir)
    return open_engine(index, weights=weights or Weights(), k1=k1, embedders=embedders,
                       cache_dir=Path(cache_dir) if cache_dir is not None else None)


def _built_with(index_dir: Path) -> IndexSettings:
    """The settings an index was built with, or the defaults when they cannot be read."""
    try:
        return recorded_settings(read_manifest(index_dir)[1])
    except RagError:
        return IndexSettings()


def build(index_dir: str | Path = "index", *, root: str | Path | None = None,
          sources: list[str | Path] | str | Path | None = None,
          settings: IndexSettings | None = None, embedders: dict[str, Embedder] | None = None,
          progress: Callable[[str, int], Callable[[int], None]] | None = None,
          cache_dir: str | Path | None = None) -> Index:
    """Build the index from the transcripts (default: ROOT/data/*.txt)."""
    index_dir = Path(index_dir)
    settings = settings or IndexSettings()
    root = Path(root) if root is not None else index_dir.resolve().parent
    if isinstance(sources, str | Path):  # one transcript, not the letters of its name
        sources = [sources]
    paths = [Path(s) if Path(s).is_absolute() else root / s for s in sources] \
        if sources is not None else default_sources(root)
    if not paths:
        raise RagError(f"no transcripts to index: put .txt files in {root / 'data'}")
    return build_index(paths, index_dir, root=root, settings=settings, embedders=embedders,
                       progress=progress,
                       cache_dir=Path(cache_dir) if cache_dir is not None else None)
