"""Load: N concurrent clients asking questions of `rag serve` over loopback for a fixed time.

For each number of clients (10 and 50 by default) it warms the server up, runs GET /api/health
as the baseline of what the HTTP stack alone costs, then POST /api/ask with the gold questions
in turn, and reports throughput, latency percentiles, errors, and the server's memory after the
warm-up and after the run, and the server's CPU split by thread (the model runs, the answer
worker, the main thread's HTTP work: rag/threads.py names them). Each client is one keep-alive
HTTP/1.1 connection driven by asyncio in this one process, so the load generator takes little
of the CPU the server needs on a small machine; its own CPU time is measured and reported
beside the server's.

    python bench/load.py [--clients 10 50] [--seconds 30] [--warmup 5] [--runs 1] [--json]
                         [--url http://127.0.0.1:PORT [--pid PID] | --root PROJECT]

Without --url it serves a temporary copy of the project (data and index) with this checkout's
`rag serve`, and stops it at the end. Loopback only. With --runs N the figures are medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from soak import (  # noqa: E402
    ROOT as PROJECT,
)
from soak import (  # noqa: E402
    RssSampler,
    copied_project,
    gold_bodies,
    growth,
    loopback,
    own_server,
    percentile,
    ratio,
    rss_kib,
)

TIMEOUT = 60.0


@dataclass
class Phase:
    """One phase's requests: latencies (seconds), failures by kind, wall and CPU seconds."""

    latencies: list[float] = field(default_factory=list)
    failures: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float | None = None
    server_threads: dict[str, float] | None = None

    def summary(self) -> dict:
        done = sorted(self.latencies)
        sent = len(done) + sum(self.failures.values())
        return {"requests": sent, "errors": sum(self.failures.values()),
                "failures": dict(self.failures), "seconds": round(self.seconds, 2),
                "throughput": round(len(done) / self.seconds, 1) if self.seconds else 0.0,
                "p50_ms": percentile(done, 50), "p95_ms": percentile(done, 95),
                "p99_ms": percentile(done, 99),
                "client_cpu_pct": round(100 * self.client_cpu / self.seconds, 1)
                if self.seconds else None,
                "server_cpu_pct": round(100 * self.server_cpu / self.seconds, 1)
                if self.seconds and self.server_cpu is not None else None,
                "server_threads_pct": {name: round(100 * cpu / self.seconds, 1)
                                       for name, cpu in sorted((self.server_threads or {}).items(),
                                                               key=lambda kv: -kv[1])
                                       if cpu > 0} if self.seconds else {}}


def requests_for(host: str, port: int, bodies: list[dict] | None) -> list[bytes]:
    """The raw requests, encoded once: POST /api/ask per body, or one GET /api/health."""
    if not bodies:
        return [f"GET /api/health HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()]
    out = []
    for body in bodies:
        data = json.dumps(body, ensure_ascii=False).encode()
        head = (f"POST /api/ask HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n")
        out.append(head.encode() + data)
    return out


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Status, body and whether the server keeps the connection open."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" not in headers:
        raise ValueError("no Content-Length")
    body = await reader.readexactly(int(headers["content-length"]))
    return status, body, headers.get("connection", "").lower() != "close"


def verdict(status: int, body: bytes, ask: bool) -> str | None:
    """None for a real answer (or a ready health check), else what went wrong."""
    if status != 200:
        return f"HTTP {status}"
    try:
        data = json.loads(body)
    except ValueError:
        return "invalid JSON"
    if ask:
        ok = isinstance(data.get("abstained"), bool) and isinstance(data.get("citations"), list)
    else:
        ok = data.get("status") == "ready"
    return None if ok else "unexpected body"


async def client(host: str, port: int, requests: list[bytes], start: int, deadline: float,
                 phase: Phase, ask: bool) -> None:
    """One keep-alive connection sending requests in turn until the deadline."""
    conn = None
    i = start
    while time.monotonic() < deadline:
        started = time.perf_counter()
        try:
            if conn is None:
                conn = await asyncio.wait_for(asyncio.open_connection(host, port), TIMEOUT)
            reader, writer = conn
            writer.write(requests[i % len(requests)])
            status, body, keep = await asyncio.wait_for(read_response(reader), TIMEOUT)
            problem = verdict(status, body, ask)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError,
                TimeoutError) as exc:
            problem, keep = type(exc).__name__, False
        took = time.perf_counter() - started
        if problem:
            phase.failures[problem] += 1
        else:
            phase.latencies.append(took)
        if not keep and conn is not None:
            conn[1].close()
            conn = None
        i += 1
    if conn is not None:
        conn[1].close()


def cpu_seconds(pid: int | None) -> float | None:
    """A process's user + system CPU time so far, from /proc (None when unknown)."""
    return None if pid is None else _stat_cpu(Path(f"/proc/{pid}/stat"))


def _stat_cpu(stat: Path) -> float:
    """User + system CPU seconds from a /proc stat file (of a process or of one thread)."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int | None) -> dict[str, float]:
    """CPU seconds so far of a process's threads by name: a pool's numbered threads together,
    the main thread as "main", threads the server never named as "other"."""
    if pid is None:
        return {}
    process = Path(f"/proc/{pid}/comm").read_text().strip()
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            seconds = _stat_cpu(task / "stat")
            name = (task / "comm").read_text().strip()
        except OSError:  # the thread ended meanwhile
            continue
        name = "main" if task.name == str(pid) else \
            "other" if name == process else re.sub(r"_\d+$", "", name)
        out[name] = out.get(name, 0.0) + seconds
    return out


def run_phase(url: str, clients: int, seconds: float, bodies: list[dict] | None,
              pid: int | None = None) -> Phase:
    """`clients` connections for `seconds`: /api/ask with `bodies` in turn, else /api/health."""
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port or 80
    requests = requests_for(host, port, bodies)
    phase = Phase()

    async def all_clients() -> None:
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(client(host, port, requests, n * len(requests) // clients,
                                      deadline, phase, bodies is not None)
                               for n in range(clients)))

    cpu, server_cpu, threads = time.process_time(), cpu_seconds(pid), thread_cpu(pid)
    started = time.perf_counter()
    asyncio.run(all_clients())
    phase.seconds = time.perf_counter() - started
    phase.client_cpu = time.process_time() - cpu
    if server_cpu is not None:
        phase.server_cpu = cpu_seconds(pid) - server_cpu
        phase.server_threads = {name: seconds - threads.get(name, 0.0)
                                for name, seconds in thread_cpu(pid).items()}
    return phase


def level(url: str, pid: int | None, clients: int, seconds: float, warmup: float,
          bodies: list[dict]) -> dict:
    """Warm-up, the health baseline, then the /api/ask load, at one number of clients."""
    run_phase(url, clients, warmup, bodies, pid)
    health = run_phase(url, clients, seconds, None, pid).summary()
    before = rss_kib(pid)
    with RssSampler(pid, every=max(1.0, seconds / 8)) as rss:
        ask = run_phase(url, clients, seconds, bodies, pid).summary()
    after = rss_kib(pid)
    return {"clients": clients, "health": health, "ask": ask,
            "rss_kib": {"before": before, "peak": max(rss.samples + [after or 0]) or None,
                        "after": after},
            "rss_growth_pct": growth(before, after),
            "throughput_ratio": ratio(ask["throughput"], health["throughput"]),
            "p95_ratio": ratio(ask["p95_ms"], health["p95_ms"])}


def load(url: str, pid: int | None, *, clients: list[int], seconds: float, warmup: float,
         runs: int) -> dict:
    bodies = gold_bodies()
    rss_start = rss_kib(pid)
    results = [[level(url, pid, c, seconds, warmup, bodies) for c in clients]
               for _ in range(runs)]
    rss_end = rss_kib(pid)
    levels = [median_level([run[i] for run in results]) for i in range(len(clients))]
    first_before = results[0][0]["rss_kib"]["before"]
    return {"url": url, "seconds": seconds, "warmup": warmup, "runs": runs,
            "levels": levels, "rss_kib": {"start": rss_start, "after_first_warmup":
                                          first_before, "end": rss_end},
            "rss_growth_pct": growth(first_before, rss_end),
            "errors": sum(r["ask"]["errors"] + r["health"]["errors"]
                          for run in results for r in run)}


def median_level(runs: list[dict]) -> dict:
    """The medians of several runs of one level (the first run's, for one run)."""
    if len(runs) == 1:
        return runs[0]
    out = json.loads(json.dumps(runs[0]))
    for part in ("health", "ask"):
        for key in ("throughput", "p50_ms", "p95_ms", "p99_ms", "client_cpu_pct",
                    "server_cpu_pct"):
            values = [r[part][key] for r in runs if r[part][key] is not None]
            out[part][key] = statistics.median(values) if values else None
        out[part]["errors"] = sum(r[part]["errors"] for r in runs)
        out[part]["requests"] = sum(r[part]["requests"] for r in runs)
    for key in ("throughput_ratio", "p95_ratio", "rss_growth_pct"):
        values = [r[key] for r in runs if r[key] is not None]
        out[key] = statistics.median(values) if values else None
    out["rss_kib"]["after"] = runs[-1]["rss_kib"]["after"]
    return out


def show(report: dict) -> str:
    rows = [f"load: {report['seconds']} s per phase after {report['warmup']} s of warm-up, "
            f"{report['runs']} run(s), {report['url']}",
            f"{'':<24}{'requests':>9}{'errors':>7}{'req/s':>8}{'p50 ms':>8}{'p95 ms':>8}"
            f"{'p99 ms':>8}{'client CPU':>11}{'server CPU':>11}"]
    for lv in report["levels"]:
        for name, key in (("GET /api/health", "health"), ("POST /api/ask", "ask")):
            s = lv[key]
            rows.append(f"{lv['clients']:>3} x {name:<18}{s['requests']:>9}{s['errors']:>7}"
                        f"{s['throughput']:>8}{_v(s['p50_ms'])}{_v(s['p95_ms'])}"
                        f"{_v(s['p99_ms'])}{_pct(s['client_cpu_pct'], 11)}"
                        f"{_pct(s['server_cpu_pct'], 11)}")
            if s["failures"]:
                rows.append(f"      failures: {s['failures']}")
            if key == "ask" and s.get("server_threads_pct"):
                rows.append("      server CPU by thread: " + ", ".join(
                    f"{name} {pct:.0f}%" for name, pct in s["server_threads_pct"].items()))
        rss = lv["rss_kib"]
        rows.append(f"      ask/health: throughput x{lv['throughput_ratio']}, p95 "
                    f"x{lv['p95_ratio']}; server RSS {_mib(rss['before'])} -> "
                    f"{_mib(rss['after'])} (peak {_mib(rss['peak'])})")
    rss = report["rss_kib"]
    rows.append(f"server RSS: start {_mib(rss['start'])}, after the first warm-up "
                f"{_mib(rss['after_first_warmup'])}, at the end {_mib(rss['end'])} "
                f"({'?' if report['rss_growth_pct'] is None else report['rss_growth_pct']}%)")
    return "\n".join(rows)


def _v(value) -> str:
    return f"{'-' if value is None else value:>8}"


def _pct(value, width: int) -> str:
    return f"{'?' if value is None else f'{value}%':>{width}}"


def _mib(kib: int | None) -> str:
    return "?" if not kib else f"{kib / 1024:.0f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--seconds", type=float, default=30, help="per phase (30)")
    parser.add_argument("--warmup", type=float, default=5, help="seconds before each level (5)")
    parser.add_argument("--runs", type=int, default=1, help="runs to take medians over (1)")
    parser.add_argument("--url", help="a running server on 127.0.0.1 (default: start one)")
    parser.add_argument("--pid", type=int, help="the --url server's process, for its memory")
    parser.add_argument("--root", type=Path, default=PROJECT,
                        help="the project to serve a copy of (default: this repository)")
    parser.add_argument("--json", action="store_true", help="end with one line of JSON")
    args = parser.parse_args(argv)
    if min(args.clients) < 1 or args.seconds <= 0 or args.runs < 1:
        parser.error("--clients, --seconds and --runs must be positive")
    run = dict(clients=args.clients, seconds=args.seconds, warmup=args.warmup, runs=args.runs)
    if args.url:
        report = load(loopback(args.url), args.pid, **run)
    else:
        with copied_project(args.root) as root, own_server(root) as server:
            report = load(server.url, server.pid, **run)
    print(show(report), flush=True)
    if args.json:
        print(json.dumps(report))
    return 0 if report["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
