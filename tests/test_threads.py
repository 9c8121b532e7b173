"""The engine's worker threads carry their names at the OS level, where `top -H` and
`bench/load.py` read them."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from rag import Request, ask_many
from rag.server import LockedAsk
from rag.threads import named_pool

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="thread names are read from /proc")


def os_name(native_id: int) -> str:
    return Path(f"/proc/self/task/{native_id}/comm").read_text().strip()


def os_names() -> set[str]:
    return {p.read_text().strip() for p in Path("/proc/self/task").glob("*/comm")}


def test_a_named_pool_names_its_threads_for_the_os():
    with named_pool(2, "probe") as pool:
        seen = set(pool.map(lambda _: (threading.current_thread().name,
                                       os_name(threading.get_native_id())), range(8)))
    assert seen and all(python == os for python, os in seen)
    assert {python.rsplit("_", 1)[0] for python, _ in seen} == {"probe"}


def test_the_answer_worker_and_model_runs_are_named(engine):
    worker = LockedAsk(engine)  # kept: its thread ends with it
    worker("Que dit Blinken du Sahel ?")
    ask_many(engine, [Request("Sahel ?"), Request("What about the Indo-Pacific?")])
    names = os_names()
    assert "rag-ask_0" in names
    assert any(n.startswith("rag-step_") for n in names)
    assert any(n.startswith("onnx_") for n in names)
