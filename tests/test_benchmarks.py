"""The benchmark scripts run end to end on CPU, and ``--record PATH`` writes what the book reads
(gmmlib.readings.speed): the command, the machine, the date, the commit and the figures."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gmmlib.readings import speed

ROOT = Path(__file__).resolve().parents[1]


def _run(args, tmp_path, timeout=600):
    env = {"PYTHONPATH": str(ROOT), "GMMLIB_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin", "GMMLIB_DATA": ""}
    out = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.mark.slow
def test_gmm_overhead_records_the_side_by_side_ratio_the_book_reads(tmp_path):
    path = tmp_path / "benchmarks" / "gmm_overhead.json"
    text = _run(
        ["benchmarks/gmm_overhead.py", "--rounds", "2", "--sizes", "cpu", "--family-rounds", "0",
         "--attention-rounds", "2", "--record", str(path), "--note", "a test, machine shared"],
        tmp_path,
    )  # fmt: skip
    assert re.search(r"ratio GMM-ViT / ViT, wall time: median \d+\.\d{3}", text)
    record = speed.load_benchmark("gmm_overhead", tmp_path)
    assert record["benchmark"] == "gmm_overhead" and "--sizes cpu" in record["command"]
    assert record["machine"]["note"] == "a test, machine shared" and record["machine"]["cores"] >= 1
    assert record["settings"]["rounds"] == 2 and record["date"][:2] == "20"
    assert record["git"]["commit"] is None or len(record["git"]["commit"]) == 40
    o = speed.training_overhead(record, "cpu")
    assert o.rounds == 2 and o.ratio_min <= o.ratio <= o.ratio_max and o.ratio > 0
    assert f"{o.ratio:.2f} times the ViT's" in speed.overhead_text(record, "cpu")
    rows = speed.attention_call_rows(record)
    assert [r["variant"] for r in rows] == [
        "no mask (fused SDPA)",
        "GMM, cache-blocked kernel",
        "GMM, plain autograd",
        "RetNet decay, gmmlib fused",
        "RetNet decay, SDPA with a bias",
    ]
    assert [p.name for p in path.parent.iterdir()] == ["gmm_overhead.json"]  # atomic: no temporary file left
    with pytest.raises(speed.BenchmarkError, match="not 'paper'"):
        speed.training_overhead(record, "paper")


def test_gmm_overhead_refuses_an_unknown_size(tmp_path):
    out = subprocess.run(
        [sys.executable, "benchmarks/gmm_overhead.py", "--sizes", "huge"], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 2 and "unknown size(s) huge" in out.stderr


@pytest.mark.slow
def test_data_pipeline_records_its_figures(tmp_path):
    path = tmp_path / "dp.json"
    _run(
        ["benchmarks/data_pipeline.py", "--dataset", "synthetic", "--preset", "quick", "--record", str(path)], tmp_path
    )
    record = json.loads(path.read_text())
    assert record["benchmark"] == "data_pipeline" and record["settings"]["preset"] == "quick"
    assert record["figures"]["images_per_second"] > 0 and 0 <= record["figures"]["data_wait_share"] <= 1


@pytest.mark.slow
def test_gpu_throughput_prints_every_figure(tmp_path):
    path = tmp_path / "benchmarks" / "throughput.json"
    text = _run(
        ["benchmarks/gpu_throughput.py", "--device", "cpu", "--preset", "quick", "--steps", "2", "--rounds", "2",
         "--warmup", "1", "--parallel", "2", "--record", str(path)],
        tmp_path,
    )  # fmt: skip
    assert "data: synthetic" in text
    assert re.search(r"data path alone: gpu pipeline [\d,]+ img/s; cpu pipeline [\d,]+ img/s", text)
    for model in ("ViT", "GMM-ViT"):
        assert re.search(rf"  {re.escape(model)} +[\d,]+ img/s +one run \(512 images\): +[\d.]+ min", text)
        assert re.search(rf"2 x {re.escape(model)} in parallel: [\d,]+ img/s in total \([\d,]+, [\d,]+\)", text)
    assert re.search(r"GMM-ViT / ViT step time: \d+\.\d{3}", text)
    record = speed.load_benchmark("throughput", tmp_path)
    side = record["figures"]["side_by_side"]
    assert side["images_per_run"] == 512 and set(side["images_per_second"]) == {"ViT", "GMM-ViT"}
    assert len(record["figures"]["parallel"]["ViT"]["images_per_second"]) == 2
    with pytest.raises(speed.BenchmarkError, match="not 'paper'"):
        speed.paper_run_time(record)  # a quick-preset record cannot say how long a paper run takes
