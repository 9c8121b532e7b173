"""Soak the HTTP server: many questions over many connections, beside a trivial baseline.

A leak or a slowdown under load only shows over thousands of requests, so this sends them and
reports throughput, latency percentiles, errors and the server's memory before and after. The
same load against GET /api/health runs first, so the figures for /api/ask can be read against
what the HTTP stack alone costs on this machine.

    python bench/soak.py [--requests 10000] [--concurrency 50] [--max-seconds 1200]
                         [--url http://127.0.0.1:PORT [--pid PID] | --root PROJECT]

Without --url it serves a temporary copy of the project (data and index) with `rag serve` and
stops it at the end. Loopback only; it stops after --requests or --max-seconds, whichever first.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from tests.web_fixtures import free_port, wait_ready  # noqa: E402

GOLD = ROOT / "tests" / "gold.jsonl"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class Server:
    url: str
    pid: int | None = None
    log: Path | None = None


@dataclass
class Load:
    """What one load phase did: per-request latencies (seconds) and the failures by kind."""

    sent: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    failures: Counter = field(default_factory=Counter)

    @property
    def errors(self) -> int:
        return sum(self.failures.values())

    def summary(self) -> dict:
        done = sorted(self.latencies)
        return {"requests": self.sent, "errors": self.errors, "failures": dict(self.failures),
                "seconds": round(self.seconds, 2),
                "throughput": round(self.sent / self.seconds, 2) if self.seconds else 0.0,
                "p50_ms": percentile(done, 50), "p95_ms": percentile(done, 95),
                "p99_ms": percentile(done, 99)}


def percentile(ordered: list[float], pct: float) -> float | None:
    """Nearest-rank percentile in milliseconds: a latency some request really had."""
    if not ordered:
        return None
    rank = max(1, -(-len(ordered) * pct // 100))
    return round(ordered[int(rank) - 1] * 1000, 1)


def gold_bodies(path: Path = GOLD) -> list[dict]:
    """Request bodies for POST /api/ask, one per gold question, follow-ups with their context."""
    bodies = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            body = {"question": item["question"]}
            if item.get("previous"):
                body["previous"] = item["previous"]
            bodies.append(body)
    return bodies


def is_answer(response: httpx.Response) -> bool:
    """A 200 whose body is an answer, not merely any 200."""
    if response.status_code != 200:
        return False
    body = response.json()
    return isinstance(body.get("abstained"), bool) and isinstance(body.get("citations"), list)


def is_health(response: httpx.Response) -> bool:
    return response.status_code == 200 and response.json().get("status") == "ready"


def run_load(url: str, *, requests: int, concurrency: int, deadline: float,
             bodies: list[dict] | None = None) -> Load:
    """`requests` calls over `concurrency` keep-alive connections, one per worker thread.

    With `bodies` each call is POST /api/ask with the next body in turn; without, GET
    /api/health. No call starts after `deadline` (a time.monotonic() value).
    """
    load = Load()
    lock = threading.Lock()
    turn = iter(range(requests))

    def next_turn() -> int | None:
        with lock:
            if time.monotonic() >= deadline:
                return None
            return next(turn, None)

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=120) as client:
            while (i := next_turn()) is not None:
                started = time.perf_counter()
                kind = call(client, bodies[i % len(bodies)] if bodies else None)
                took = time.perf_counter() - started
                with lock:
                    load.sent += 1
                    load.latencies.append(took)
                    if kind:
                        load.failures[kind] += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    load.seconds = time.perf_counter() - started
    return load


def call(client: httpx.Client, body: dict | None) -> str | None:
    """One request; None when it succeeded, else what went wrong in a word or two."""
    try:
        if body is None:
            response = client.get("/api/health")
            ok = is_health(response)
        else:
            response = client.post("/api/ask", json=body)
            ok = is_answer(response)
    except httpx.HTTPError as exc:
        return type(exc).__name__
    except ValueError:
        return "invalid JSON"
    return None if ok else f"HTTP {response.status_code}"


def rss_kib(pid: int | None) -> int | None:
    """The process's resident memory in KiB, from /proc (None when unknown)."""
    if pid is None:
        return None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


class RssSampler:
    """The server's RSS every few seconds while a load runs, to tell a leak from a plateau."""

    def __init__(self, pid: int | None, every: float = 5.0):
        self.pid = pid
        self.every = every
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(rss_kib(self.pid))

    def __enter__(self) -> RssSampler:
        if self.pid is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def midway(self) -> int | None:
        return self.samples[len(self.samples) // 2] if self.samples else None

    def quartiles(self) -> list[int]:
        n = len(self.samples)
        return [self.samples[min(n - 1, n * q // 4)] for q in (1, 2, 3)] if n else []


def growth(before: int | None, after: int | None) -> float | None:
    if not before or after is None:
        return None
    return round(100 * (after - before) / before, 2)


def tracebacks(log: Path | None) -> int | None:
    if log is None:
        return None
    return log.read_text(encoding="utf-8", errors="replace").count("Traceback")


def stop(proc: subprocess.Popen) -> None:
    """Terminate a server process, killing it if it lingers."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def own_server(root: Path, *, timeout: float = 600,
               options: Sequence[str] = ()) -> Iterator[Server]:
    """`rag serve` on 127.0.0.1 in `root` (which holds data/ and index/), stopped at the end.

    `options`: more arguments for `rag serve`.

    Its output goes to a temporary file, so a crash or a traceback during a run can be counted.
    """
    port = free_port()
    # This checkout's `rag` first, whatever the environment has installed.
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
           "GRADIO_ANALYTICS_ENABLED": "False", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": path}
    with tempfile.TemporaryDirectory(prefix="rag-serve-") as logs:
        log = Path(logs) / "serve.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--host",
                                     "127.0.0.1", "--port", str(port), *options],
                                    cwd=root, env=env,
                                    stdout=out, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, timeout=timeout, alive=lambda: proc.poll() is None)
            yield Server(url, proc.pid, log)
        finally:
            stop(proc)


@contextlib.contextmanager
def copied_project(root: Path) -> Iterator[Path]:
    """A temporary copy of the project's data and index: a stale index is rebuilt there."""
    with tempfile.TemporaryDirectory(prefix="rag-soak-") as tmp:
        copy = Path(tmp)
        shutil.copytree(root / "data", copy / "data")
        if (root / "index").is_dir():
            shutil.copytree(root / "index", copy / "index",
                            ignore=shutil.ignore_patterns(".lock", "CURRENT.tmp"))
        yield copy


def soak(server: Server, *, requests: int, concurrency: int, max_seconds: float,
         warmup: int = 500) -> dict:
    """Warm up, run the health baseline, then the /api/ask load; the figures as a dict."""
    deadline = time.monotonic() + max_seconds
    bodies = gold_bodies()
    rss_start = rss_kib(server.pid)
    warm = run_load(server.url, requests=warmup, concurrency=concurrency, deadline=deadline,
                    bodies=bodies)
    baseline = run_load(server.url, requests=requests, concurrency=concurrency,
                        deadline=deadline)
    rss_before = rss_kib(server.pid)
    logged_before = tracebacks(server.log)
    with RssSampler(server.pid) as rss:
        ask = run_load(server.url, requests=requests, concurrency=concurrency,
                       deadline=deadline, bodies=bodies)
    rss_after = rss_kib(server.pid)
    logged_after = tracebacks(server.log)
    report = {"url": server.url, "requests": requests, "concurrency": concurrency,
              "max_seconds": max_seconds, "completed": ask.sent == requests,
              "warmup": warm.summary(), "health": baseline.summary(), "ask": ask.summary(),
              "rss_kib": {"start": rss_start, "before": rss_before,
                          "quartiles": rss.quartiles(), "after": rss_after},
              "rss_growth_pct": growth(rss_before, rss_after),
              "rss_growth_second_half_pct": growth(rss.midway(), rss_after),
              "tracebacks_logged": (None if logged_before is None
                                    else logged_after - logged_before)}
    report["throughput_ratio"] = ratio(report["ask"]["throughput"],
                                       report["health"]["throughput"])
    report["p99_ratio"] = ratio(report["ask"]["p99_ms"], report["health"]["p99_ms"])
    return report


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def show(report: dict) -> str:
    """The report as a small table and a few lines."""
    head = (f"{'':<16}{'requests':>9}{'errors':>8}{'seconds':>9}{'req/s':>9}"
            f"{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    rows = [f"soak: {report['requests']} requests, {report['concurrency']} connections, "
            f"{report['url']}", head]
    for name, key in (("GET /api/health", "health"), ("POST /api/ask", "ask")):
        s = report[key]
        rows.append(f"{name:<16}{s['requests']:>9}{s['errors']:>8}{s['seconds']:>9}"
                    f"{s['throughput']:>9}{_ms(s['p50_ms'])}{_ms(s['p95_ms'])}"
                    f"{_ms(s['p99_ms'])}")
        if s["failures"]:
            rows.append(f"  failures: {s['failures']}")
    rows.append(f"ask/health: throughput x{report['throughput_ratio']}, "
                f"p99 x{report['p99_ratio']}")
    rss = report["rss_kib"]
    if rss["after"] is not None:
        rows.append(f"server RSS: start {_mib(rss['start'])}, after warm-up "
                    f"{_mib(rss['before'])}, after the run {_mib(rss['after'])} "
                    f"({report['rss_growth_pct']:+.2f}%)")
        rows.append(f"  during the run, at 1/4, 1/2, 3/4: "
                    f"{', '.join(_mib(k) for k in rss['quartiles'])}; over its second half "
                    f"{_pct(report['rss_growth_second_half_pct'])}")
    if report["tracebacks_logged"] is not None:
        rows.append(f"tracebacks in the server log during the run: "
                    f"{report['tracebacks_logged']}")
    if not report["completed"]:
        rows.append(f"stopped at the time limit ({report['max_seconds']} s) after "
                    f"{report['ask']['requests']} of {report['requests']} requests")
    return "\n".join(rows)


def _ms(value: float | None) -> str:
    return f"{'-' if value is None else value:>9}"


def _pct(value: float | None) -> str:
    return "?" if value is None else f"{value:+.2f}%"


def _mib(kib: int | None) -> str:
    return "?" if kib is None else f"{kib / 1024:.0f} MiB"


def loopback(url: str) -> str:
    """The URL without a trailing slash, if it is on this machine; else refuse."""
    if urlsplit(url).hostname not in LOOPBACK:
        raise SystemExit(f"soak: {url} is not a loopback address; refusing to load it")
    return url.rstrip("/")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--max-seconds", type=float, default=1200)
    parser.add_argument("--url", help="a running server on 127.0.0.1 (default: start one)")
    parser.add_argument("--pid", type=int, help="the --url server's process, for its memory")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="the project to serve a copy of (default: this repository)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1:
        parser.error("--requests and --concurrency must be at least 1")
    run = dict(requests=args.requests, concurrency=args.concurrency,
               max_seconds=args.max_seconds, warmup=args.warmup)
    if args.url:
        report = soak(Server(loopback(args.url), args.pid), **run)
    else:
        with copied_project(args.root) as root, own_server(root) as server:
            report = soak(server, **run)
    print(json.dumps(report, indent=2) if args.json else show(report))
    return 0 if report["completed"] and report["ask"]["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
