"""The PIAF and Tatoeba benchmarks still run and still print what docs and CI read from them.

Tiny inputs and a fresh embedding cache, so this checks the scripts, not the figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.index import hnsw_ef_search

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
METRICS = ("R@1", "R@5", "R@10", "MRR")


def run_bench(script: str, args: list[str], cache: Path) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_DISABLE_PROGRESS_BARS="1",
               RAG_BENCH_CACHE=str(cache))
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args, "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) > 1, "a table should come before the JSON line"
    return json.loads(lines[-1])


def in_unit_range(figures: dict, keys) -> bool:
    return all(isinstance(figures[k], float | int) and 0.0 <= figures[k] <= 1.0 for k in keys)


@pytest.mark.skipif(not (DATA / "piaf-v1.1.json").exists(), reason="no PIAF data")
@pytest.mark.parametrize("weights", ["default", "piaf-e5"])
def test_piaf_prints_engine_and_baseline_figures(tmp_path, weights):
    out = run_bench("piaf.py", ["--limit", "20", "--weights", weights], tmp_path)
    assert out["weights"] == weights and in_unit_range(out, METRICS)
    assert set(out["baselines"]) == {"minilm_faiss", "bm25_french", "use", "e5"}
    for figures in out["baselines"].values():
        assert in_unit_range(figures, METRICS)
    assert out["split"] == "even" and out["paragraphs"] == 20


@pytest.mark.skipif(not (DATA / "tatoeba.fra-eng.eng").exists(), reason="no Tatoeba data")
def test_tatoeba_prints_both_directions(tmp_path):
    out = run_bench("tatoeba.py", ["--limit", "30"], tmp_path)
    assert in_unit_range(out, ("en->fr", "fr->en"))
    assert out["pairs"] == 30 and "multilingual-e5-small" in out["model"]
    assert len(out["baselines"]) == 4
    for figures in out["baselines"].values():
        assert in_unit_range(figures, ("en->fr", "fr->en"))


@pytest.mark.skipif(not (DATA / "piaf-v1.1.json").exists(), reason="no PIAF data")
def test_indexing_prints_throughput_and_quality_for_both_sides(tmp_path):
    out = run_bench("indexing.py", ["--limit", "8", "--repeat", "1"], tmp_path)
    assert out["texts"] == out["paragraphs"] + out["passages"] and out["paragraphs"] == 8
    assert set(out["rows"]) == {"plain encode", "onnx-int8", "onnx"}
    for row in out["rows"].values():
        assert row["seconds"] > 0 and row["texts_per_s"] > 0
        assert in_unit_range(row, ("R@1", "R@5"))


PERCENTILE_KEYS = {"p50_ms", "p95_ms", "p99_ms"}


def test_latency_prints_ours_baseline_and_ratios(tmp_path):
    out = run_bench("latency.py", ["--smoke"], tmp_path)
    assert out["questions"] == 5 and out["runs"] == 1
    for side in ("ours", "baseline", "ratio"):
        assert PERCENTILE_KEYS <= set(out[side])
        assert all(out[side][k] > 0 for k in PERCENTILE_KEYS)
    assert out["ours"]["calls"] == out["baseline"]["calls"] == 5


def test_stages_times_each_encoder_ranking_and_the_whole(tmp_path):
    out = run_bench("stages.py", ["--smoke"], tmp_path)
    assert out["questions"] == 8 and out["repeat"] == 2
    assert set(out["stages"]) == {"embed all-MiniLM-L6-v2", "embed use-multilingual-v3",
                                  "embed new words (term coverage)", "rank and compose",
                                  "read with the transcripts' spelling", "ask_many (whole)"}
    assert all(f["cpu_ms"] > 0 and f["wall_ms"] > 0 for f in out["stages"].values())


def test_gcpause_times_full_passes_before_and_after_the_heap_is_settled(tmp_path):
    """The loaded server is what a full pass walks; settled, it walks what came after."""
    out = run_bench("gcpause.py", ["--smoke"], tmp_path)
    assert out["repeat"] == 2
    assert out["baseline"]["tracked"] > 50_000
    assert out["settled"]["frozen"] >= out["baseline"]["tracked"] // 2
    assert out["settled"]["tracked"] < out["baseline"]["tracked"] // 10
    assert out["baseline"]["median_ms"] > 0


def test_coldstart_times_ask_serve_and_baselines(tmp_path):
    out = run_bench("coldstart.py", ["--smoke"], tmp_path)
    for key in ("ask", "baseline", "python", "serve"):
        assert len(out[key]["runs"]) == 1 and out[key]["median_s"] > 0
    for key in ("ask", "baseline", "python"):
        assert out[key]["peak_rss_mb"] > 5  # a Python process's own, at least
    assert "gradio" not in out["ask_heavy_imports"]
    assert out["ask_over_baseline"] > 0


def test_load_runs_clients_without_errors(tmp_path):
    out = run_bench("load.py", ["--clients", "5", "--seconds", "2", "--warmup", "1"], tmp_path)
    assert out["errors"] == 0
    (level,) = out["levels"]
    assert level["clients"] == 5
    for phase in ("health", "ask"):
        assert level[phase]["errors"] == 0 and level[phase]["requests"] > 0
        assert PERCENTILE_KEYS <= set(level[phase])
    assert level["rss_kib"]["before"] and level["rss_kib"]["after"]
    # The server's CPU by thread: the model runs and the answer worker are named and busy.
    threads = level["ask"]["server_threads_pct"]
    assert {"onnx", "rag-ask", "main"} <= set(threads) and threads["onnx"] > 0


@pytest.mark.skipif(not (DATA / "piaf-v1.1.json").exists(), reason="no PIAF data")
def test_scale_prints_exact_and_approximate_figures(tmp_path):
    out = run_bench("scale.py", ["--smoke"], tmp_path)
    dense = out["dense"]
    assert {r["size"] for r in dense} == {500, 2000}
    for size in (500, 2000):
        rows = [r for r in dense if r["size"] == size]
        assert rows[0]["index"].startswith("Flat") and rows[0]["recall@10"] == 1.0
        assert len(rows) > 1 and sum(r["engine"] for r in rows) == 1
    for row in dense:
        assert in_unit_range(row, ["recall@10"])
        assert row["p50_ms"] > 0 and row["p95_ms"] >= row["p50_ms"] and row["bytes"] > 0
    assert all(r["p50_ratio"] > 0 for r in dense if not r["index"].startswith("Flat"))
    assert [r["size"] for r in out["lexical"]] == [300, 1000]
    assert all(r["same_scores"] and r["p50_ratio"] > 0 for r in out["lexical"])
    assert out["engine"] and all(r["p50_ms"] > 0 for r in out["engine"])
    for row in out["engine"]:  # a search limited to a few sources, about 1 % of the passages
        assert 0 < row["selected"] < row["size"] / 20 and row["sel_p50_ms"] > 0
    # The smoke engine searches a graph (--graph-above 500): its top 10 against exact search's,
    # as it is and at two other depths.
    row = out["engine"][0]
    assert in_unit_range(row, ["recall@10", "top1"]) and row["recall@10"] >= 0.9
    assert row["ef_search"] == hnsw_ef_search(1000)
    assert [d["ef_search"] for d in row["depths"]] == [16, 64]
    assert all(in_unit_range(d, ["recall@10", "top1"]) and d["p50_ms"] > 0
               for d in row["depths"])


def test_tune_prints_held_out_figures_and_weights():
    """bench/tune.py, which sets `rag.retrieve.Weights`, on the real gold set and index."""
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "tune.py"), "tests/gold.jsonl",
                           "--trials", "1", "--repeats", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=240,
                          env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert done.returncode == 0, done.stderr[-2000:]
    figures = {line.partition(": ")[0]: json.loads(line.partition(": ")[2])
               for line in done.stdout.splitlines() if line.startswith(("fold", "mean", "all"))}
    assert set(figures) == {"fold 0 held-out", "fold 1 held-out",
                            "mean of 1 random splits, held-out", "all (in-sample)"}
    for report in figures.values():
        assert in_unit_range(report, report)
        assert report["answered_turn@1"] <= report["turn@1"]
    assert "grams.pair" in done.stdout and "abstain_bias=" in done.stdout


def test_separability_prints_signal_and_rule_areas():
    """bench/separability.py, behind docs/quality.md's figures on the near-miss questions."""
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "separability.py"),
                           "tests/gold-near.jsonl", "--trials", "1", "--splits", "1", "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=240,
                          env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert "multilingual.question" in report["signals"] and len(report["rules"]) == 9
    assert in_unit_range(report["signals"], report["signals"])
    for rule in report["rules"]:
        assert in_unit_range(rule, ("auc", "auc_fit"))
    assert in_unit_range(report["half_joined"], report["half_joined"])


def test_typing_variants_counts_right_and_same_answers(tmp_path):
    out = run_bench("typing_variants.py", [str(ROOT / "tests" / "gold-unseen.jsonl")], tmp_path)
    result = out["gold-unseen.jsonl"]
    rows = result["variants"]
    assert set(rows) == {"as written", "lower case", "capitals", "no accents",
                         "phone apostrophes", "decomposed accents", "a slip"}
    assert rows["as written"]["same_as_written"] == result["questions"] == 40
    assert all(0 <= row["right"] <= 40 and 0 <= row["same_as_written"] <= 40
               for row in rows.values())


def test_conversation_asks_each_question_alone_and_after_another(tmp_path):
    out = run_bench("conversation.py", [str(ROOT / "tests" / "gold-unseen.jsonl")], tmp_path)
    on, off = out["on-topic"], out["off-topic"]
    assert on["questions"] == 26 and off["questions"] == 14
    assert 0 <= on["right_after"] <= on["questions"]
    assert 0 <= off["answered_after"] <= off["questions"]
    # A question not read as a follow-up is searched alone, whatever came before it.
    if on["follow_ups"] == 0:
        assert on["right_after"] == on["right_alone"]
    if off["follow_ups"] == 0:
        assert off["answered_after"] == off["answered_alone"]


def test_tiebreak_compares_the_engine_with_and_without_it(tmp_path):
    out = run_bench("tiebreak.py", ["--smoke"], tmp_path)
    assert set(out["held_out"]) == {"without", "with"}
    assert in_unit_range(out["held_out"]["with"], ("turn@1", "evidence@1"))
    sides = out["files"]["gold.jsonl"]
    assert in_unit_range(sides["without"], ("turn@1", "evidence@1", "abstention"))
    assert sides["with"] != sides["without"], "close calls settled otherwise change answers"
    assert 0 < out["close_calls"] < 1 and out["timing"]["ratio"] > 0


def test_calibration_fits_a_curve_and_scores_it_beside_the_base_rate(tmp_path):
    out = run_bench("calibration.py", ["--repeats", "1", "--trials", "50",
                                       "--unseen", "tests/gold-unseen.jsonl"], tmp_path)
    assert out["questions"] == 40 and 0 < out["right"] < 40
    slope, lead_slope, _ = out["calibration"]
    assert slope > 0, "a wider margin must mean a likelier right answer"
    assert lead_slope > 0, "so must a clearer lead of the best answer over the next"
    for side in ("shipped", "fitted_now", "margin_only", "base_rate", "margin_sigmoid"):
        assert 0 <= out[side]["brier"] <= 1 and out[side]["log_loss"] > 0
    assert sum(row["questions"] for row in out["reliability"]) == 40
