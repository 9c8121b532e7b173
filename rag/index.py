"""Save and load the index: passages, their vectors in FAISS, and a manifest that says what
they were built from, so a changed transcript, model or format is caught, never used.

Layout: `INDEX/CURRENT` names a build folder `INDEX/build-*`; a build is written beside the
current one and CURRENT is swapped atomically, so a crash mid-build leaves the old index usable.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .chunk import clause_spans
from .corpus import Corpus, corpus_from_transcripts
from .coverage import corpus_words, words_digest
from .embed import (
    DEFAULT_BACKEND,
    DEFAULT_MODEL,
    E5_MODEL,
    MULTILINGUAL_MODEL,
    Embedder,
    embed_questions,
    load_embedder,
    pooled_mean,
)
from .errors import IndexCorruptError, IndexMissingError, IndexStaleError, IndexWriteError
from .lexical import as_read
from .transcript import read_transcript

# 5: texts are embedded as read (`lexical.as_read`), passages measured as read (`chunk`)
FORMAT_VERSION = 5
FLAT_LIMIT = 20_000  # above this many passages, an HNSW graph replaces exact search
HNSW_M, HNSW_EF_CONSTRUCTION = 32, 80
# Search depth by corpus size, chosen on what a question gets back: in bench/scale.py the whole
# search's top 10 agree with those of the same search over exact indexes at 0.98 at 10^5 and
# 10^6 passages (docs/performance.md, "Scale"). Each graph alone then finds fewer of its own
# exact 10 nearest (under 0.971 and 0.936, its figures at efSearch 512 at 10^6); the candidates
# join both models' nearest and the lexical best, so the ranking misses little of what a
# deeper search finds, at a fraction of its cost.
HNSW_EF_SEARCH = ((None, 256),)
# Models whose vectors of each passage's clauses are kept (`Vectors.clauses`): the ranking
# fit gives the multilingual encoder's clause signal a large weight and all-MiniLM-L6-v2's
# none (docs/quality.md), so only the former spends indexing time and memory on them.
CLAUSE_MODELS = frozenset({MULTILINGUAL_MODEL})
# Models whose vectors of the corpus's words are kept (`Vectors.words`), for a question's
# term coverage (rag/coverage.py): only a cross-lingual model can say that "disengaging" is
# a word of a French transcript.
WORD_MODELS = frozenset({MULTILINGUAL_MODEL})


def hnsw_ef_search(n: int) -> int:
    """The HNSW search depth for a corpus of n passages."""
    return next(ef for limit, ef in HNSW_EF_SEARCH if limit is None or n <= limit)


@dataclass(frozen=True)
class IndexSettings:
    """What an index is built with; all of it is recorded in the manifest and checked on load."""

    model: str = DEFAULT_MODEL
    backend: str = DEFAULT_BACKEND  # how `model` runs: int8 weights change its vectors a little
    multilingual: bool = True
    e5: bool = False  # multilingual-e5-small too: see rag/e5.py and docs/quality-piaf.md
    max_chars: int = 320
    min_chars: int = 60

    @property
    def models(self) -> list[str]:
        return [self.model] + ([MULTILINGUAL_MODEL] if self.multilingual else []) + \
            ([E5_MODEL] if self.e5 and self.model != E5_MODEL else [])


@dataclass
class Vectors:
    """One model's vectors: passages (searched through FAISS), and as context the answers, the
    interviewer questions, and each passage read together with its question ("pairs").

    `clauses` (float16, to halve their memory) holds the vectors of the passages' clauses,
    in passage order, and `clause_of` the passage each belongs to; both are empty for a model
    not in CLAUSE_MODELS. `words` (float16) holds the vectors of the corpus's most widespread
    words (`coverage.corpus_words`), empty for a model not in WORD_MODELS.
    """

    passages: np.ndarray
    documents: np.ndarray
    questions: np.ndarray
    pairs: np.ndarray
    faiss_index: object = field(default=None, repr=False)
    clauses: np.ndarray | None = None
    clause_of: np.ndarray | None = None
    words: np.ndarray | None = None

    def __post_init__(self):
        if self.clauses is None or self.clause_of is None:
            self.clauses = np.zeros((0, self.passages.shape[1]), np.float16)
            self.clause_of = np.zeros(0, np.int64)
        if self.words is None:
            self.words = np.zeros((0, self.passages.shape[1]), np.float16)


@dataclass
class Index:
    """A corpus with its vectors. `words`: `coverage.corpus_words(corpus)` when already
    computed (loading checks it against the build's), so an engine need not redo it."""

    corpus: Corpus
    vectors: dict[str, Vectors]
    manifest: dict
    words: tuple[frozenset[str], list[str]] | None = None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _slug(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model)[-80:]


def source_name(path: Path, root: Path) -> str:
    """A transcript's name in citations: its path relative to the project root when inside it."""
    try:
        return Path(os.path.relpath(path.resolve(), root.resolve())).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def passage_clauses(corpus: Corpus) -> tuple[list[str], np.ndarray]:
    """The clauses of every passage that has several (`chunk.clause_spans`), in passage
    order, and the passage each belongs to."""
    texts, owners = [], []
    for p in corpus.passages:
        source = corpus.texts[corpus.documents[p.doc].source]
        for a, b in clause_spans(source, p.start, p.end):
            texts.append(source[a:b])
            owners.append(p.id)
    return texts, np.array(owners, dtype=np.int64)


def embed_corpus(corpus: Corpus, embedder: Embedder,
                 progress: Callable[[int], None] | None = None, *,
                 clauses: bool | None = None, words: bool | None = None) -> Vectors:
    """Vectors for every passage, answer and interviewer question of a corpus, for the
    passages' clauses when `clauses` (default: for a model in CLAUSE_MODELS), and for the
    corpus's words when `words` (default: for a model in WORD_MODELS).

    A mean-pooled model runs only over the passages and the distinct questions: an answer's
    vector pools its passages' tokens, and a pair's pools its question's and passage's, which
    costs nothing more and covers answers longer than the model's window whole.
    """
    embedder = AsRead(embedder)
    if getattr(embedder, "poolable", False):
        vectors = _pooled_vectors(corpus, embedder, progress)
    else:
        vectors = _whole_vectors(corpus, embedder, progress)
    if embedder.name in CLAUSE_MODELS if clauses is None else clauses:
        texts, owners = passage_clauses(corpus)
        parts = _in_steps(embedder.embed_batch, texts, progress)
        if parts:
            vectors.clauses = np.concatenate(parts).astype(np.float16)
            vectors.clause_of = owners
    if embedder.name in WORD_MODELS if words is None else words:
        parts = _in_steps(embedder.embed_batch, corpus_words(corpus)[1], progress)
        if parts:
            vectors.words = np.concatenate(parts).astype(np.float16)
    vectors.faiss_index = make_faiss_index(vectors.passages)
    return vectors


@dataclass(frozen=True)
class AsRead:
    """An embedder given every text as the encoders should read it (`lexical.as_read`)."""

    inner: Embedder

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def embed_batch(self, texts: list[str]):
        return self.inner.embed_batch([as_read(t) for t in texts])

    def embed_queries(self, texts: list[str]):
        return embed_questions(self.inner, [as_read(t) for t in texts])

    def embed_pooled(self, texts: list[str]):
        return self.inner.embed_pooled([as_read(t) for t in texts])


def _in_steps(embed: Callable[[list[str]], object], texts: list[str],
              progress: Callable[[int], None] | None, step: int = 256) -> list:
    out = []
    for i in range(0, len(texts), step):
        out.append(embed(texts[i:i + step]))
        if progress:
            progress(min(step, len(texts) - i))
    return out


def _whole_vectors(corpus: Corpus, embedder: Embedder,
                   progress: Callable[[int], None] | None) -> Vectors:
    texts = [p.text for p in corpus.passages]
    texts += [corpus.document_text(d) for d in corpus.documents]
    texts += [d.question or "" for d in corpus.documents]
    texts += [_pair(corpus.documents[p.doc].question, p.text) for p in corpus.passages]
    parts = _in_steps(embedder.embed_batch, texts, progress)
    matrix = np.concatenate(parts) if parts else np.zeros((0, embedder.dim), np.float32)
    n, m = len(corpus.passages), len(corpus.documents)
    return Vectors(matrix[:n], matrix[n:n + m], matrix[n + m:n + 2 * m], matrix[n + 2 * m:])


def _pooled_vectors(corpus: Corpus, embedder, progress: Callable[[int], None] | None) -> Vectors:
    dim = embedder.dim
    n, m = len(corpus.passages), len(corpus.documents)
    distinct = sorted({d.question for d in corpus.documents if d.question})
    parts = _in_steps(embedder.embed_pooled, [p.text for p in corpus.passages] + distinct,
                      progress)
    sums = np.concatenate([s for s, _ in parts]) if parts else np.zeros((0, dim), np.float32)
    counts = np.concatenate([c for _, c in parts]) if parts else np.zeros(0, np.float32)
    if progress:
        progress(2 * n + 2 * m - len(sums))  # answers and pairs come for free
    p_sums, p_counts = sums[:n], counts[:n]
    q_row = {q: n + i for i, q in enumerate(distinct)}
    doc_of = np.fromiter((p.doc for p in corpus.passages), dtype=np.int64, count=n)
    d_sums = np.zeros((m, dim), np.float32)
    d_counts = np.zeros(m, np.float32)
    np.add.at(d_sums, doc_of, p_sums)
    np.add.at(d_counts, doc_of, p_counts)
    q_index = np.array([q_row.get(d.question, -1) for d in corpus.documents], dtype=np.int64)
    q_sums = np.where(q_index[:, None] >= 0, sums[q_index], 0).astype(np.float32)
    q_counts = np.where(q_index >= 0, counts[q_index], 0).astype(np.float32)
    pair_sums = p_sums + q_sums[doc_of]
    pair_counts = p_counts + q_counts[doc_of]
    questions = np.zeros((m, dim), np.float32)
    has_q = q_index >= 0
    questions[has_q] = pooled_mean(q_sums[has_q], q_counts[has_q])
    if not has_q.all():  # an answer without a question: as the whole path embeds ""
        questions[~has_q] = embedder.embed_batch([""])[0]
    return Vectors(pooled_mean(p_sums, p_counts), pooled_mean(d_sums, d_counts), questions,
                   pooled_mean(pair_sums, pair_counts))


def _pair(question: str | None, passage: str) -> str:
    return f"{question} {passage}" if question else passage


def make_faiss_index(matrix: np.ndarray):
    """Exact inner-product search for small corpora, an HNSW graph for large ones."""
    import faiss

    dim = matrix.shape[1]
    if len(matrix) > FLAT_LIMIT:
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = hnsw_ef_search(len(matrix))
    else:
        index = faiss.IndexFlatIP(dim)
    if len(matrix):
        index.add(np.ascontiguousarray(matrix, dtype=np.float32))
    return index


@contextmanager
def _build_lock(index_dir: Path) -> Iterator[None]:
    created = not index_dir.exists()
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        handle = open(index_dir / ".lock", "a+")
    except OSError as exc:
        raise IndexWriteError(
            f"cannot write the index folder {index_dir}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexWriteError(
                f"another build of {index_dir} is running; wait for it to finish") from None
        yield
    except BaseException:
        # A first build that fails leaves no empty index folder to be mistaken for an index.
        if created:
            with suppress(OSError):
                (index_dir / ".lock").unlink(missing_ok=True)
                index_dir.rmdir()
        raise
    finally:
        handle.close()


def build_index(sources: list[Path], index_dir: Path, *, root: Path,
                settings: IndexSettings = IndexSettings(),
                embedders: dict[str, Embedder] | None = None,
                progress: Callable[[str, int], Callable[[int], None]] | None = None,
                cache_dir: Path | None = None) -> Index:
    """Parse, chunk and embed the transcripts, then write the index atomically.

    `progress(label, total)` may return a callback that is told how many items were done.
    """
    if index_dir.is_file():  # said before the work, and plainer than mkdir's "File exists"
        raise IndexWriteError(f"cannot write the index folder {index_dir}: it is a file, "
                              "not a folder")
    # The folder is taken first: one that cannot be written, or another build running, fails
    # at once rather than after the embedding, which takes minutes on a large corpus.
    with _build_lock(index_dir):
        transcripts = [read_transcript(p, source=source_name(p, root)) for p in sources]
        corpus = corpus_from_transcripts(transcripts, max_chars=settings.max_chars,
                                         min_chars=settings.min_chars)
        embedders = embedders or {}
        vectors = {}
        clauses = len(passage_clauses(corpus)[0])
        all_words, words = corpus_words(corpus)
        for model in settings.models:
            embedder = embedders.get(model) or load_embedder(model, backend=settings.backend,
                                                              cache_dir=cache_dir)
            embedders[model] = embedder
            total = 2 * len(corpus.passages) + 2 * len(corpus.documents)
            total += clauses if model in CLAUSE_MODELS else 0
            total += len(words) if model in WORD_MODELS else 0
            tick = progress(f"embedding with {model}", total) if progress else None
            vectors[model] = embed_corpus(corpus, embedder, tick)
        manifest = {
            "format": FORMAT_VERSION,
            "sources": [{"path": t.source, "sha256": t.sha256} for t in transcripts],
            "models": [{"name": m, "dim": int(vectors[m].passages.shape[1])}
                       for m in settings.models],
            "settings": asdict(settings),
            "passages": len(corpus.passages),
            "clauses": clauses,
            "words": {"count": len(words), "sha256": words_digest(words)},
            "documents": len(corpus.documents),
            "index_type": "hnsw" if len(corpus.passages) > FLAT_LIMIT else "flat",
            "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        _write(index_dir, corpus, vectors, manifest)
    return Index(corpus, vectors, manifest, (all_words, words))


def _write(index_dir: Path, corpus: Corpus, vectors: dict[str, Vectors], manifest: dict) -> None:
    try:
        build = _new_build(index_dir)
        try:
            _write_build(build, corpus, vectors, manifest)
            pointer = index_dir / "CURRENT.tmp"
            pointer.write_text(build.name + "\n", encoding="utf-8")
            os.replace(pointer, index_dir / "CURRENT")
        except BaseException:
            # A build that never became current is never read: leave none to fill the disk.
            shutil.rmtree(build, ignore_errors=True)
            raise
        _fsync_dir(index_dir)
    except OSError as exc:
        reason = "the disk is full" if exc.errno == errno.ENOSPC else exc.strerror
        raise IndexWriteError(f"cannot write the index in {index_dir}: {reason}") from None
    for old in index_dir.glob("build-*"):
        if old.name != build.name:
            shutil.rmtree(old, ignore_errors=True)


def _new_build(index_dir: Path) -> Path:
    """A new, empty build folder. Made with mkdir, not mkdtemp, so that it honours the umask
    (mkdtemp's are 0700): an index built by one account can be read by another."""
    while True:
        build = index_dir / f"build-{secrets.token_hex(6)}"
        try:
            build.mkdir()
            return build
        except FileExistsError:
            continue


def _write_build(build: Path, corpus: Corpus, vectors: dict[str, Vectors],
                 manifest: dict) -> None:
    """Every file of a build, its manifest last, each write failing as an OSError."""
    files = {}
    path = build / "corpus.json"
    path.write_text(json.dumps(corpus.to_json(), ensure_ascii=False), encoding="utf-8")
    files[path.name] = _sha256(path)
    for model, vec in vectors.items():
        slug = _slug(model)
        path = build / f"{slug}.faiss"
        _write_faiss(vec.faiss_index, path)
        files[path.name] = _sha256(path)
        path = build / f"{slug}.context.npy"
        np.save(path, np.concatenate([vec.documents, vec.questions, vec.pairs]),
                allow_pickle=False)
        files[path.name] = _sha256(path)
        if len(vec.clauses):
            for path, array in ((build / f"{slug}.clauses.npy", vec.clauses),
                                (build / f"{slug}.clause_of.npy", vec.clause_of)):
                np.save(path, array, allow_pickle=False)
                files[path.name] = _sha256(path)
        if len(vec.words):
            path = build / f"{slug}.words.npy"
            np.save(path, vec.words, allow_pickle=False)
            files[path.name] = _sha256(path)
    manifest = dict(manifest, files=files)
    path = build / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    _fsync_dir(build)


def _write_faiss(index, path: Path) -> None:
    """Write a FAISS index through a Python file: FAISS's own writer reports a full disk as a
    RuntimeError with the reason in its text, a Python file as an OSError with its errno."""
    import faiss

    with open(path, "wb") as fh:
        faiss.write_index(index, faiss.PyCallbackIOWriter(fh.write))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_manifest(index_dir: Path) -> tuple[Path, dict]:
    """The current build folder and its manifest, or a named error."""
    pointer = index_dir / "CURRENT"
    if not pointer.exists():
        raise IndexMissingError(f"no index in {index_dir}")
    try:
        name = pointer.read_text(encoding="utf-8").strip()
        build = index_dir / name
        if not re.fullmatch(r"build-[A-Za-z0-9_]+", name) or not build.is_dir():
            raise IndexCorruptError(f"the index in {index_dir} points to a missing build")
        manifest = json.loads((build / "manifest.json").read_text(encoding="utf-8"))
        if not isinstance(manifest, dict):
            raise ValueError("not an object")
    except (OSError, ValueError, RecursionError) as exc:
        raise IndexCorruptError(
            f"the index manifest in {index_dir} is unreadable ({exc})") from None
    return build, manifest


def _check_format(manifest: dict) -> None:
    """Raise IndexStaleError for a manifest of another format: its fields may differ, which
    makes it out of date, not damaged."""
    if manifest.get("format") != FORMAT_VERSION:
        raise IndexStaleError(f"the index has format {manifest.get('format')!r}, "
                              f"this version reads format {FORMAT_VERSION}")


def _shape_problem(manifest: dict) -> str | None:
    """Which field of a manifest of this format lacks the type loading reads it as, or None
    (`settings` and `words` are only compared, so any value will do)."""
    def has(item, **types) -> bool:
        return isinstance(item, dict) and all(
            isinstance(item.get(key), kind) and not isinstance(item.get(key), bool)
            for key, kind in types.items())

    sources, models, files = (manifest.get(k) for k in ("sources", "models", "files"))
    if not isinstance(sources, list) or not all(has(s, path=str, sha256=str) for s in sources):
        return '"sources" is not a list of {"path", "sha256"}'
    if not isinstance(models, list) or not all(has(m, name=str, dim=int) for m in models):
        return '"models" is not a list of {"name", "dim"}'
    if not isinstance(files, dict) or not all(
            isinstance(name, str) and isinstance(digest, str) and Path(name).name == name
            for name, digest in files.items()):
        return '"files" does not map file names to checksums'
    return None


def _check_shape(manifest: dict, build: Path | None = None) -> None:
    """Raise IndexCorruptError for a manifest whose fields lack their types: reading it would
    otherwise fail as a crash, not as a damaged index that a rebuild replaces."""
    problem = _shape_problem(manifest)
    if problem:
        where = f" in {build}" if build else ""
        raise IndexCorruptError(f"the index manifest{where} is damaged ({problem})")


def recorded_settings(manifest: dict) -> IndexSettings:
    """The settings an index was built with, as its manifest records them: what a reader
    that names none opens it with. Settings this version cannot take make it stale."""
    raw = manifest.get("settings")
    defaults = asdict(IndexSettings())
    if not isinstance(raw, dict) or set(raw) != set(defaults) or \
            any(type(raw[k]) is not type(v) for k, v in defaults.items()):
        raise IndexStaleError(f"the index was built with settings this version does not "
                              f"read ({raw!r})")
    return IndexSettings(**raw)


def check_manifest(manifest: dict, *, sources: dict[str, str],
                   settings: IndexSettings | None) -> None:
    """Raise IndexStaleError unless the manifest matches these sources and settings.

    `sources` maps each transcript's name to its current sha256; `settings` None accepts those
    the index was built with. A manifest whose fields lack their types is an
    IndexCorruptError.
    """
    _check_format(manifest)
    _check_shape(manifest)
    built = {s["path"]: s["sha256"] for s in manifest["sources"]}
    if set(built) != set(sources):
        raise IndexStaleError(f"the index was built from {sorted(built)}, not {sorted(sources)}")
    changed = [name for name, digest in sources.items() if built[name] != digest]
    if changed:
        raise IndexStaleError(f"the transcript changed since the index was built: {changed}")
    if settings is None:
        settings = recorded_settings(manifest)
    if manifest.get("settings") != asdict(settings):
        raise IndexStaleError(f"the index was built with {manifest.get('settings')}, "
                              f"not {asdict(settings)}")


def load_index(index_dir: Path, *, root: Path, sources: list[Path] | None = None,
               settings: IndexSettings | None = None) -> Index:
    """Load and verify an index; sources default to those the manifest names, and settings
    (None) to those it was built with: given, they must be the ones it was built with."""
    import faiss

    build, manifest = read_manifest(index_dir)
    _check_format(manifest)
    _check_shape(manifest, build)
    texts, digests = {}, {}
    names = [source_name(p, root) for p in sources] if sources is not None else \
        [s["path"] for s in manifest["sources"]]
    for name in names:
        path = root / name
        try:
            raw = path.read_bytes()
        except OSError:
            raise IndexStaleError(f"the transcript {name} is missing") from None
        digests[name] = hashlib.sha256(raw).hexdigest()
        texts[name] = raw.decode("utf-8", errors="replace")
    check_manifest(manifest, sources=digests, settings=settings)
    try:
        for name, digest in manifest["files"].items():
            if _sha256(build / name) != digest:
                raise IndexCorruptError(f"{name} in {build} is damaged (checksum mismatch)")
        corpus = Corpus.from_json(
            json.loads((build / "corpus.json").read_text(encoding="utf-8")), texts)
        known, words = corpus_words(corpus)
        if manifest["words"] != {"count": len(words), "sha256": words_digest(words)}:
            raise IndexStaleError("the index's list of the corpus's words is not the one this "
                                  "version makes; rebuild it")
        vectors = {}
        for entry in manifest["models"]:
            slug = _slug(entry["name"])
            index = faiss.read_index(str(build / f"{slug}.faiss"))
            if hasattr(index, "hnsw"):  # the depth is a search setting, not the build's
                index.hnsw.efSearch = hnsw_ef_search(index.ntotal)
            passages = index.reconstruct_n(0, index.ntotal) if index.ntotal else \
                np.zeros((0, entry["dim"]), np.float32)
            context = np.load(build / f"{slug}.context.npy", allow_pickle=False)
            m, n = len(corpus.documents), len(corpus.passages)
            if len(passages) != n or context.shape != (2 * m + n, entry["dim"]):
                raise IndexCorruptError(f"{build}: vector counts do not match the passages")
            clauses = clause_of = None
            if f"{slug}.clauses.npy" in manifest["files"]:
                clauses = np.load(build / f"{slug}.clauses.npy", allow_pickle=False)
                clause_of = np.load(build / f"{slug}.clause_of.npy", allow_pickle=False)
                if clauses.shape != (len(clause_of), entry["dim"]) or \
                        np.any(np.diff(clause_of) < 0) or \
                        (len(clause_of) and not 0 <= clause_of[0] <= clause_of[-1] < n):
                    raise IndexCorruptError(f"{build}: clause vectors do not match the passages")
            word_vectors = None
            if f"{slug}.words.npy" in manifest["files"]:
                word_vectors = np.load(build / f"{slug}.words.npy", allow_pickle=False)
                if word_vectors.shape != (len(words), entry["dim"]):
                    raise IndexCorruptError(f"{build}: word vectors do not match the corpus")
            vectors[entry["name"]] = Vectors(passages, context[:m], context[m:2 * m],
                                             context[2 * m:], index, clauses, clause_of,
                                             word_vectors)
    except (IndexCorruptError, IndexStaleError):
        raise
    except (OSError, KeyError, TypeError, ValueError, IndexError, RuntimeError) as exc:
        raise IndexCorruptError(f"the index in {build} is damaged ({type(exc).__name__})") from None
    return Index(corpus, vectors, manifest, (known, words))
