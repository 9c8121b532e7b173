"""Worker threads that carry their name at the operating system's level too.

Python names its threads for itself only; `top -H`, `ps -L` and /proc then show every thread
of the server under the process's name. Named there as well, they show which stage of
answering takes the CPU: the model runs (`onnx`), the question steps (`rag-step`), the answer
worker (`rag-ask`), beside the main thread's HTTP work. `bench/load.py` reports it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import cache

_PR_SET_NAME = 15  # prctl option; Linux keeps the first 15 bytes


@cache
def _prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").prctl
    except (OSError, AttributeError):
        return None


def name_this_thread() -> None:
    """Give the calling thread its Python name at the OS level, where the OS allows it."""
    prctl = _prctl()
    if prctl is not None:
        prctl(_PR_SET_NAME, threading.current_thread().name.encode()[:15], 0, 0, 0)


def named_pool(workers: int, name: str) -> ThreadPoolExecutor:
    """A thread pool whose threads are `name_0`, `name_1`… for the OS as for Python."""
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name,
                              initializer=name_this_thread)
