"""The benchmark scripts run end to end on CPU (their figures are read by people, not asserted)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_throughput_prints_every_figure(tmp_path):
    cmd = [sys.executable, "benchmarks/gpu_throughput.py", "--device", "cpu", "--preset", "quick",
           "--steps", "2", "--rounds", "2", "--warmup", "1", "--parallel", "2"]  # fmt: skip
    env = {"PYTHONPATH": str(ROOT), "GMMLIB_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin", "GMMLIB_DATA": ""}
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    assert "data: synthetic" in text
    assert re.search(r"data path alone: gpu pipeline [\d,]+ img/s; cpu pipeline [\d,]+ img/s", text)
    for model in ("ViT", "GMM-ViT"):
        assert re.search(rf"  {re.escape(model)} +[\d,]+ img/s +one run \(512 images\): +[\d.]+ min", text)
        assert re.search(rf"2 x {re.escape(model)} in parallel: [\d,]+ img/s in total \([\d,]+, [\d,]+\)", text)
    assert re.search(r"GMM-ViT / ViT step time: \d+\.\d{3}", text)
