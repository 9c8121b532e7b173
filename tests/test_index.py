"""The index on disk: its manifest, and every way it can be missing, stale or damaged."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from rag import (
    IndexCorruptError,
    IndexMissingError,
    IndexSettings,
    IndexStaleError,
    IndexWriteError,
    build,
)
from rag.index import FORMAT_VERSION, load_index, passage_clauses, read_manifest


def _current(root: Path) -> Path:
    return read_manifest(root / "index")[0]


def test_manifest_records_what_the_index_was_built_from(project):
    _, manifest = read_manifest(project / "index")
    assert manifest["format"] == FORMAT_VERSION
    assert manifest["sources"][0]["path"] == "data/blinken-france2-2021-10.txt"
    assert [m["name"] for m in manifest["models"]] == IndexSettings().models
    assert manifest["settings"]["max_chars"] == IndexSettings().max_chars
    assert manifest["passages"] > 5 and manifest["documents"] == 5


def test_missing_index(tmp_path):
    with pytest.raises(IndexMissingError):
        load_index(tmp_path / "nowhere", root=tmp_path)


def test_changed_transcript_is_stale(scratch):
    path = scratch / "data" / "blinken-france2-2021-10.txt"
    path.write_bytes(path.read_bytes().replace(b"Sahel", b"Mali", 1))
    with pytest.raises(IndexStaleError, match="changed"):
        load_index(scratch / "index", root=scratch)


def test_other_model_or_settings_is_stale(scratch):
    with pytest.raises(IndexStaleError):
        load_index(scratch / "index", root=scratch, settings=IndexSettings(model="other"))
    with pytest.raises(IndexStaleError):
        load_index(scratch / "index", root=scratch, settings=IndexSettings(max_chars=100))


def test_older_format_is_stale(scratch):
    path = _current(scratch) / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["format"] = FORMAT_VERSION - 1
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexStaleError, match="format"):
        load_index(scratch / "index", root=scratch)


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "manifest", "pointer",
                                    "clauses"])
def test_damaged_index_is_refused(scratch, damage):
    build_dir = _current(scratch)
    target = next(build_dir.glob("*.faiss"))
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:100])
    elif damage == "flip":
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))
    elif damage == "delete":
        (build_dir / "corpus.json").unlink()
    elif damage == "manifest":
        (build_dir / "manifest.json").write_text("{not json")
    elif damage == "clauses":
        clauses = next(build_dir.glob("*.clauses.npy"))
        clauses.write_bytes(clauses.read_bytes()[:-64])
    else:
        (scratch / "index" / "CURRENT").write_text("build-gone\n")
    with pytest.raises(IndexCorruptError):
        load_index(scratch / "index", root=scratch)


def test_multilingual_clause_vectors_are_kept_in_passage_order(project, embedders):
    from rag import DEFAULT_MODEL, MULTILINGUAL_MODEL

    index = load_index(project / "index", root=project)
    texts, owners = passage_clauses(index.corpus)
    use = index.vectors[MULTILINGUAL_MODEL]
    assert len(texts) > len(index.corpus.passages)  # the long answers have several clauses
    assert index.manifest["clauses"] == len(texts)
    assert use.clauses.dtype == np.float16
    assert use.clauses.shape == (len(texts), use.passages.shape[1])
    assert use.clause_of.tolist() == owners.tolist() == sorted(owners.tolist())
    again = embedders[MULTILINGUAL_MODEL].embed_batch(texts[:5])
    assert np.allclose(use.clauses[:5].astype(np.float32), again, atol=2e-3)
    assert len(index.vectors[DEFAULT_MODEL].clauses) == 0  # measured to add nothing


def _drop_last_row(build_dir: Path, pattern: str) -> None:
    """Cut the last row of an index array and record its new checksum, as a build that wrote
    the wrong number of rows would have."""
    path = next(build_dir.glob(pattern))
    np.save(path, np.load(path)[:-1])
    manifest_path = build_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"][path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest))


def test_clause_vectors_that_do_not_fit_the_passages_are_refused(scratch):
    _drop_last_row(_current(scratch), "*.clause_of.npy")  # one clause without its passage
    with pytest.raises(IndexCorruptError, match="clause"):
        load_index(scratch / "index", root=scratch)


def test_multilingual_word_vectors_are_kept_for_the_corpus_words(project, embedders):
    from rag import DEFAULT_MODEL, MULTILINGUAL_MODEL
    from rag.coverage import corpus_words, words_digest

    index = load_index(project / "index", root=project)
    _, words = corpus_words(index.corpus)
    assert index.manifest["words"] == {"count": len(words), "sha256": words_digest(words)}
    use = index.vectors[MULTILINGUAL_MODEL]
    assert use.words.dtype == np.float16 and use.words.shape == (len(words), 512)
    again = embedders[MULTILINGUAL_MODEL].embed_batch(words[-5:])
    assert np.allclose(use.words[-5:].astype(np.float32), again, atol=2e-3)
    assert len(index.vectors[DEFAULT_MODEL].words) == 0


def test_word_vectors_that_do_not_fit_the_corpus_are_refused(scratch):
    _drop_last_row(_current(scratch), "*.words.npy")
    with pytest.raises(IndexCorruptError, match="word"):
        load_index(scratch / "index", root=scratch)


def test_an_index_whose_word_list_differs_is_stale(scratch):
    manifest_path = _current(scratch) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["words"]["sha256"] = "0" * 64  # words chosen by another version
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IndexStaleError, match="words"):
        load_index(scratch / "index", root=scratch)


class _FailingEmbedder:
    """Implements the embedder interface and fails, like a crash after the first model's work."""

    name = "failing"
    dim = 4

    def embed_batch(self, texts):
        raise RuntimeError("simulated crash")


def test_failed_build_leaves_previous_index_loadable(scratch, embedders):
    before = load_index(scratch / "index", root=scratch)
    failing = dict(embedders)
    failing[IndexSettings().models[-1]] = _FailingEmbedder()
    with pytest.raises(RuntimeError):
        build(scratch / "index", root=scratch, embedders=failing)
    after = load_index(scratch / "index", root=scratch)
    assert after.manifest["files"] == before.manifest["files"]


def test_read_only_index_folder_is_a_clear_error(scratch, embedders):
    import os

    if os.geteuid() == 0:
        # root ignores permission bits; a file where the folder should be fails for everyone
        (scratch / "blocked").write_text("not a folder")
        target = scratch / "blocked" / "index"
    else:
        (scratch / "index").chmod(0o500)
        target = scratch / "index"
    with pytest.raises(IndexWriteError):
        build(target, root=scratch, embedders=dict(embedders))


def test_large_corpus_gets_an_hnsw_graph_searched_at_its_size_depth(scratch, embedders,
                                                                   monkeypatch, engine):
    """Past FLAT_LIMIT passages the index is an HNSW graph; loading sets the search depth
    for its size, and answers (candidates taken from the graph) match exact search's."""
    from dataclasses import replace

    from rag import ask
    from rag import index as rag_index
    from rag.retrieve import open_engine

    monkeypatch.setattr(rag_index, "FLAT_LIMIT", 10)
    build(scratch / "index", root=scratch, embedders=dict(embedders))
    loaded = load_index(scratch / "index", root=scratch)
    assert loaded.manifest["index_type"] == "hnsw"
    n = len(loaded.corpus.passages)
    for vec in loaded.vectors.values():
        assert vec.faiss_index.hnsw.efSearch == rag_index.hnsw_ef_search(n) >= 100
    few = replace(engine.weights, candidates=2)  # so that candidates come from the index
    assert n > 4 * few.candidates
    graph = open_engine(loaded, embedders=dict(embedders), weights=few)
    exact_engine = open_engine(engine.index, embedders=dict(embedders), weights=few)
    text = (scratch / "data" / "blinken-france2-2021-10.txt").read_text(encoding="utf-8")
    for question in ("Que dit Blinken du Sahel ?", "What did he say about AUKUS?"):
        got, exact = ask(graph, question), ask(exact_engine, question)
        assert [c.start for c in got.citations] == [c.start for c in exact.citations]
        assert all(text[c.start:c.end] == c.text for c in got.citations)


def test_search_depth_never_shrinks_as_the_corpus_grows():
    from rag.index import HNSW_EF_SEARCH, hnsw_ef_search

    depths = [hnsw_ef_search(n) for n in (1_000, 100_000, 1_000_000, 10**8)]
    assert depths == sorted(depths) and depths[-1] == HNSW_EF_SEARCH[-1][1]


def test_graph_searches_run_beside_the_lexical_pass():
    """`nearest` searches each index on the step threads while the calling thread runs the
    lexical pass: the same ids as searching one after the other, and the pass's own result."""
    import threading

    import faiss
    import numpy as np

    from rag.retrieve import nearest

    rng = np.random.default_rng(0)
    searches = []
    for dim in (16, 24):
        vectors = rng.standard_normal((3000, dim)).astype(np.float32)
        index = faiss.IndexFlatIP(dim)
        index.add(vectors)
        searches.append((index, vectors[7] + 0.1))
    caller = threading.current_thread()
    found, side = nearest(searches, 10, lambda: threading.current_thread() is caller)
    assert side is True
    for (index, q), ids in zip(searches, found, strict=True):
        assert ids.tolist() == index.search(q[None, :], 10)[1][0].tolist()
    with pytest.raises(ZeroDivisionError):  # a failing pass is not lost behind the searches
        nearest(searches, 10, lambda: 1 / 0)


def test_one_transcript_named_alone_is_that_transcript(tmp_path, embedders):
    """`build(sources="data/x.txt")` indexes that file, not one file per letter of its name."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.txt").write_text(
        'date 2021-10 X : Q ?\n\nA : "Une réponse assez longue pour être citée ici."\n',
        encoding="utf-8")
    index = build(tmp_path / "index", root=tmp_path, sources="data/x.txt",
                  embedders=dict(embedders))
    assert [s["path"] for s in index.manifest["sources"]] == ["data/x.txt"]


@pytest.mark.parametrize("field, value", [
    ("sources", ["data/blinken-france2-2021-10.txt"]), ("sources", 5),
    ("sources", [{"sha256": "x"}]), ("files", [1]), ("files", {"../corpus.json": "x"}),
    ("models", [{"name": "all-MiniLM-L6-v2", "dim": "384"}]),
])
def test_a_manifest_with_fields_of_the_wrong_type_is_damaged(scratch, field, value):
    path = _current(scratch) / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest[field] = value
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError, match=f'damaged \\("{field}"'):
        load_index(scratch / "index", root=scratch)


def test_a_damaged_manifest_is_rebuilt_on_request(scratch):
    from rag import load_engine

    path = _current(scratch) / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["sources"] = [s["path"] for s in manifest["sources"]]
    path.write_text(json.dumps(manifest))
    why = []
    engine = load_engine(scratch / "index", root=scratch, rebuild=True, on_rebuild=why.append)
    assert "damaged" in why[0] and engine.index.corpus.passages
    load_index(scratch / "index", root=scratch)


def test_an_index_can_be_read_by_other_accounts_as_the_umask_allows(scratch, embedders):
    import os
    import stat

    old = os.umask(0o027)
    try:
        build(scratch / "index", root=scratch, embedders=dict(embedders))
    finally:
        os.umask(old)
    build_dir = _current(scratch)
    assert stat.S_IMODE(build_dir.stat().st_mode) == 0o750
    assert stat.S_IMODE((build_dir / "manifest.json").stat().st_mode) == 0o640


def test_a_file_where_the_index_folder_should_be_is_named_as_such(scratch, embedders):
    (scratch / "afile").write_text("not an index")
    with pytest.raises(IndexWriteError, match="afile: it is a file, not a folder"):
        build(scratch / "afile", root=scratch, embedders=dict(embedders))


def test_an_index_folder_that_cannot_be_written_fails_before_any_work(scratch):
    """Before the transcripts are read (here, one that does not exist) and long before the
    embedding: a large corpus would otherwise be embedded only to be thrown away."""
    from rag.index import build_index

    (scratch / "afile").write_text("not a folder")
    with pytest.raises(IndexWriteError, match="cannot write the index folder"):
        build_index([scratch / "missing.txt"], scratch / "afile" / "index", root=scratch)
