"""Shared fixtures: the real bundled models, loaded once, and the real index of the transcript."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

ROOT = Path(__file__).resolve().parents[1]
TRANSCRIPT = ROOT / "data" / "blinken-france2-2021-10.txt"
GOLD = ROOT / "tests" / "gold.jsonl"
# Written after the weights were fitted and never used to fit or choose anything in the
# bundled engine; scored when the tie-break of an e5 index was chosen (docs/quality.md).
UNSEEN = ROOT / "tests" / "gold-unseen.jsonl"
UNSEEN_2 = ROOT / "tests" / "gold-unseen-2.jsonl"
# Written after the e5 tie-break was chosen; nothing was chosen on it (docs/quality.md).
UNSEEN_3 = ROOT / "tests" / "gold-unseen-3.jsonl"
NEAR = ROOT / "tests" / "gold-near.jsonl"
# Follow-ups, each with the question before it: the first file chose how follow-ups are
# judged, the second was written before that choice was measured on it (docs/quality.md).
FOLLOW_UPS = ROOT / "tests" / "gold-followups.jsonl"
FOLLOW_UPS_UNSEEN = ROOT / "tests" / "gold-followups-unseen.jsonl"


@pytest.fixture(scope="session")
def embedders():
    from rag import DEFAULT_MODEL, MULTILINGUAL_MODEL, load_embedder

    return {DEFAULT_MODEL: load_embedder(DEFAULT_MODEL),
            MULTILINGUAL_MODEL: load_embedder(MULTILINGUAL_MODEL)}


@pytest.fixture(scope="session")
def project(tmp_path_factory, embedders):
    """A copy of the project's data and index in a temporary root, safe to damage per test."""
    from rag import build

    root = tmp_path_factory.mktemp("project")
    (root / "data").mkdir()
    shutil.copy(TRANSCRIPT, root / "data" / TRANSCRIPT.name)
    build(root / "index", root=root, embedders=dict(embedders))
    return root


@pytest.fixture(scope="session")
def engine(project, embedders):
    from rag import load_engine

    return _load(project, embedders, load_engine)


# A second interview, in English, on topics the bundled one never touches: for the tests of
# questions that name the transcripts they may cite.
SECOND = (
    "date 2022-03 Radio Example : What is your plan for energy prices this winter?\n\n"
    'Maria Costa : "We will cap household gas bills for two years and pay for it with a tax on '
    "the windfall profits of energy companies. Families should not choose between heating and "
    'eating."\n\n'
    "And what about the coal plants?\n\n"
    '"The last two coal plants will close by 2025, and the workers will be retrained for the '
    'new offshore wind farms in the north."\n')
SECOND_NAME = "costa-radio-example-2022-03.txt"


@pytest.fixture(scope="session")
def two_project(tmp_path_factory, embedders):
    """The bundled transcript and SECOND, indexed together."""
    from rag import build

    root = tmp_path_factory.mktemp("two")
    (root / "data").mkdir()
    shutil.copy(TRANSCRIPT, root / "data" / TRANSCRIPT.name)
    (root / "data" / SECOND_NAME).write_text(SECOND, encoding="utf-8")
    build(root / "index", root=root, embedders=dict(embedders))
    return root


@pytest.fixture(scope="session")
def two_engine(two_project, embedders):
    from rag import load_engine

    return _load(two_project, embedders, load_engine)


def _load(root, embedders, load_engine):
    from rag.index import load_index
    from rag.retrieve import open_engine

    return open_engine(load_index(root / "index", root=root), embedders=dict(embedders))


@pytest.fixture()
def scratch(tmp_path, project):
    """A fresh, writable copy of the project root for tests that change or break it."""
    root = tmp_path / "root"
    shutil.copytree(project, root)
    return root
