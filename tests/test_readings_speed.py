"""Speed is read from recorded benchmarks (gmmlib.readings.speed), never from training logs: synthetic records
whose figures are known, read back as the chapters read them."""

import json

import pytest

from gmmlib.readings import speed


def _overhead_record(ratios, cpu_ratio=1.01, goal=1.05, note="shared with a training run"):
    return {
        "format": 1,
        "benchmark": "gmm_overhead",
        "command": "python benchmarks/gmm_overhead.py --rounds 3",
        "date": "2026-03-04T10:00:00+00:00",
        "git": {"commit": "0123456789abcdef", "gmmlib_modified": False},
        "machine": {"cpu": "Test CPU 9000", "cores": 2, "torch_threads": 2, "torch": "2.0", "note": note},
        "settings": {"rounds": len(ratios)},
        "figures": {
            "goal": goal,
            "cpu": {
                "training_step": {
                    "cpu": {
                        "round_ratios": ratios,
                        "ratio": sorted(ratios)[len(ratios) // 2],
                        "ratio_min": min(ratios),
                        "ratio_max": max(ratios),
                        "cpu_time_ratio": cpu_ratio,
                        "images_per_second": {"ViT": 500.0, "GMM-ViT": 480.0},
                    }
                },
                "attention_call": {
                    "median_ms": {"no mask (fused SDPA)": 40.0, "GMM, cache-blocked kernel": 60.0},
                    "ratio_to_no_mask": {"no mask (fused SDPA)": 1.0, "GMM, cache-blocked kernel": 1.5},
                },
            },
        },
    }


def _write(tmp_path, name, record):
    folder = tmp_path / "benchmarks"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(record))


def test_the_overhead_is_the_side_by_side_ratio_checked_against_the_goal(tmp_path):
    _write(tmp_path, "gmm_overhead", _overhead_record([1.02, 1.04, 1.10]))
    record = speed.load_benchmark("gmm_overhead", tmp_path)
    o = speed.training_overhead(record, "cpu")
    assert (o.ratio, o.ratio_min, o.ratio_max, o.rounds) == (1.04, 1.02, 1.10, 3)
    assert o.meets_goal and o.extra_percent == pytest.approx(4.0)
    text = speed.overhead_text(record, "cpu")
    assert "1.04 times the ViT's" in text and "within the goal of at most 1.05" in text
    assert "Test CPU 9000" in text and "shared with a training run" in text and "0123456" in text
    slow = speed.training_overhead(_overhead_record([1.06, 1.08, 1.09]), "cpu")
    assert not slow.meets_goal
    assert "not met" in speed.overhead_text(_overhead_record([1.06, 1.08, 1.09]), "cpu")


def test_the_speed_sentence_for_a_chapter_names_the_benchmark_and_reads_no_log(tmp_path):
    _write(tmp_path, "gmm_overhead", _overhead_record([0.98, 1.0, 1.03]))
    text = speed.gmm_speed_text("cpu", tmp_path)
    assert "1.00 times the ViT's" in text and "from 0.98 to 1.03" in text
    assert "benchmarks/gmm_overhead.py" in text and "not read from the training logs" in text
    rows = speed.attention_call_rows(speed.load_benchmark("gmm_overhead", tmp_path))
    assert [r["time / no mask"] for r in rows] == [1.0, 1.5]
    assert speed.family_step_rows(speed.load_benchmark("gmm_overhead", tmp_path)) == []


def test_a_missing_record_says_how_to_make_it_and_a_broken_one_fails_loudly(tmp_path):
    assert speed.load_benchmark("gmm_overhead", tmp_path) is None
    assert speed.BENCHMARK_COMMANDS["gmm_overhead"] in speed.gmm_speed_text("cpu", tmp_path)
    assert "not recorded" in speed.overhead_text(None)
    record = _overhead_record([1.0])
    del record["machine"]
    _write(tmp_path, "gmm_overhead", record)
    with pytest.raises(speed.BenchmarkError, match="lacks machine"):
        speed.load_benchmark("gmm_overhead", tmp_path)
    (tmp_path / "benchmarks" / "gmm_overhead.json").write_text("{not json")
    with pytest.raises(speed.BenchmarkError, match="cannot be read"):
        speed.load_benchmark("gmm_overhead", tmp_path)
    with pytest.raises(speed.BenchmarkError, match="not 'paper'"):
        speed.training_overhead(_overhead_record([1.0]), "paper")


def test_a_paper_run_takes_its_images_over_the_benchmarked_rate():
    record = {
        "settings": {"preset": "paper"},
        "figures": {"side_by_side": {"images_per_second": {"ViT": 100.0}, "images_per_run": 360_000}},
    }
    assert speed.paper_run_time(record) == {"images": 360_000, "images_per_second": 100.0, "hours": 1.0}
    assert speed.paper_run_time(None) is None
    with pytest.raises(speed.BenchmarkError, match="not 'GMM-ViT'"):
        speed.paper_run_time(record, "GMM-ViT")
    with pytest.raises(speed.BenchmarkError, match="not 'paper'"):
        speed.paper_run_time({**record, "settings": {"preset": "cpu"}})


def test_the_machine_is_named_in_full_or_briefly():
    record = _overhead_record([1.0])
    full = speed.machine_text(record)
    assert full == (
        "Test CPU 9000, 2 cores, 2 torch threads, torch 2.0; 4 March 2026, commit 0123456; shared with a training run"
    )
    assert speed.machine_text(record, detail=False) == "Test CPU 9000, 2 torch threads, 4 March 2026"
