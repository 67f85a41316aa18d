"""The run plan per device (issue 26), checked on CPU by simulation: the capability, the GPU count and the torch
release are monkeypatched; FlexAttention's math runs through its dense CPU path; torchrun runs two gloo processes.

Each test pins one defect of the GPU path that no GPU could show us: bf16 and compilation switched on for
every CUDA device, a mask rounded to bf16, a record that said what was asked rather than what ran, a rank
failing alone, --parallel on one GPU in reused processes, no download, outputs lost with the Colab VM, and a
GPU sitting that packed no checkpoint, failed parity under TF32 and passed its compile check uncompiled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import io
import time
import warnings
from pathlib import Path

import pytest
import torch

import gmmlib
from gmmlib import attention
from gmmlib.cli import main
from gmmlib.experiments import machine, runner
from gmmlib.training import runtime
from gmmlib.training.config import PRESETS, RunConfig
from gmmlib.training.loop import setup, train
from gmmlib.training.plan import plan_for, precision_for, workers_for
from gmmlib.training.provenance import hardware_kind
from gmmlib.training.step import TrainingDiverged, check_finite, train_step

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import gpu_session  # noqa: E402

QUICK = RunConfig(model="vit", mask="gmm", pool="gap", dataset="synthetic", preset="quick")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("GMMLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GMMLIB_OUTPUT", raising=False)
    monkeypatch.delenv("GMMLIB_RESULTS", raising=False)
    attention.use_flex_attention(False)


def _fake_gpu(monkeypatch, capability, name="Simulated GPU", version=None, count=1):
    """This CPU machine as one with ``count`` GPUs of ``capability`` (and torch ``version``)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    if version is not None:
        monkeypatch.setattr(torch, "__version__", version)


# ---- 1. the plan table ----------------------------------------------------------------------------------

NEW, OLD = "2.14.1+cu130", "2.5.1+cu124"
# capability, torch -> precision, grad scaler, compiled (paper preset), CUDA graphs, attention path
TABLE = [
    ((7, 5), NEW, "float16", True, False, False, "fused"),  # a Colab T4: no bf16 in Triton, no compiled path
    ((7, 5), OLD, "float16", True, False, False, "fused"),
    ((8, 0), NEW, "bfloat16", False, True, True, "flex"),  # A100
    ((8, 0), OLD, "bfloat16", False, False, False, "fused"),  # FlexAttention's fixes are not in 2.5
    ((8, 6), NEW, "bfloat16", False, True, True, "flex"),
    ((8, 6), OLD, "bfloat16", False, False, False, "fused"),
    ((9, 0), NEW, "bfloat16", False, True, True, "flex"),  # H100, H200
    ((9, 0), OLD, "bfloat16", False, False, False, "fused"),
]


@pytest.mark.parametrize("capability, version, precision, scaler, compiled, graphs, path", TABLE)
def test_the_plan_follows_capability_and_torch_release(monkeypatch, capability, version, precision, scaler, compiled, graphs, path):  # fmt: skip
    _fake_gpu(monkeypatch, capability, version=version)
    plan = plan_for("cuda:0", PRESETS["paper"])  # asks the (simulated) device and the installed torch
    assert (plan.precision, plan.grad_scaler, plan.compile, plan.cuda_graphs, plan.attention) == (
        precision, scaler, compiled, graphs, path
    )  # fmt: skip
    assert plan.capability == f"{capability[0]}.{capability[1]}" and plan.torch == version
    assert runtime.resolve_compile(None, torch.device("cuda:0"), PRESETS["paper"]) is compiled
    # the small presets never compile by default; an explicit --compile is honoured, FlexAttention only where safe
    assert plan_for("cuda:0", PRESETS["quick"]).compile is False
    forced = plan_for("cuda:0", PRESETS["quick"], compile=True)
    assert forced.compile and forced.attention == ("flex" if path == "flex" else "inductor")


def test_cpu_plans_are_the_official_float32_eager_path():
    for name in ("cpu", "quick", "paper"):
        plan = plan_for("cpu", PRESETS[name])
        assert (plan.precision, plan.grad_scaler, plan.compile, plan.cuda_graphs, plan.attention) == (
            "float32", False, False, False, "fused"
        )  # fmt: skip
        assert plan.autocast_dtype is None and not plan.fused_optimizer
    assert precision_for("cuda", (6, 0)) == "float32"  # a P100: no tensor cores for fp16 autocast to pay
    assert precision_for("mps", None) == "float32"


def test_torchrun_gets_no_cuda_graphs(monkeypatch):
    _fake_gpu(monkeypatch, (9, 0), version=NEW)
    one, four = plan_for("cuda:0", PRESETS["paper"]), plan_for("cuda:0", PRESETS["paper"], world_size=4)
    assert one.cuda_graphs and one.compile_mode == "reduce-overhead"
    assert four.compile and not four.cuda_graphs and four.compile_mode is None
    assert any("torchrun" in note for note in four.notes)


def test_workers_follow_the_cpu_count():
    paper = PRESETS["paper"]
    assert paper.num_workers is None  # the preset leaves it to the machine
    assert workers_for(paper, "workers", cpu_count=2) == 1  # a Colab VM: one worker beside the training process
    assert workers_for(paper, "workers", cpu_count=64) == 8
    assert workers_for(paper, "batched", cpu_count=64) == 0  # the batched path has no workers
    assert workers_for(PRESETS["cpu"], "workers", cpu_count=64) == 1  # a preset that fixes it keeps it (and its keys)
    assert PRESETS["cpu"].num_workers == 1 and PRESETS["quick"].num_workers == 0


def test_a_bad_torch_version_is_named():
    with pytest.raises(ValueError, match="torch version 'nightly' does not start with MAJOR.MINOR"):
        plan_for("cpu", PRESETS["quick"], torch_version="nightly")


# ---- 1. what the record says ------------------------------------------------------------------------


def test_a_float16_step_uses_a_grad_scaler_and_records_it(tmp_path, monkeypatch):
    scaled = []
    real = torch.amp.GradScaler.scale
    monkeypatch.setattr(torch.amp.GradScaler, "scale", lambda self, x: scaled.append(1) or real(self, x))
    result = train(QUICK, tmp_path / "run", progress=False, precision="float16", device="cpu")
    quick = PRESETS["quick"]
    assert len(scaled) == quick.epochs * quick.train_limit // quick.batch_size  # every step scaled
    assert result["precision"] == "float16 autocast" and result["run_plan"]["grad_scaler"] is True
    assert all(h["train_loss"] == h["train_loss"] for h in result["history"])  # finite
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert ckpt["scaler"]["scale"] > 0  # resumed runs continue with the same loss scale
    with pytest.raises(ValueError, match="unknown precision 'fp8'; choose one of: float32, float16, bfloat16"):
        train(QUICK, tmp_path / "other", progress=False, precision="fp8")


def test_the_cpu_record_keeps_its_meaning(tmp_path):
    result = train(QUICK, tmp_path / "run", progress=False, device="cpu")
    assert result["precision"] == "float32" and result["compiled"] is False
    assert result["run_plan"]["attention"] == "fused" and result["run_plan"]["device"] == "cpu"
    assert hardware_kind(result) == "cpu, batched"


def test_a_failed_compilation_continues_eagerly_with_one_warning_and_says_so(tmp_path, monkeypatch):
    def broken(model, **kwargs):
        def call(*args, **kw):
            raise RuntimeError("ptxas error: Feature '.bf16' requires .target sm_80 or higher\nmore lines")

        call._orig_mod = model
        return call

    monkeypatch.setattr(runtime.torch, "compile", broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train(QUICK, tmp_path / "run", progress=False, compile=True, device="cpu")
    mine = [w for w in caught if "continues uncompiled" in str(w.message)]
    assert len(mine) == 1 and "requires .target sm_80" in str(mine[0].message)
    assert result["compiled"] is False and result["run_plan"]["attention"] == "fused"
    assert "compilation failed" in result["run_plan"]["notes"][-1]


def test_a_silent_fallback_is_detected_and_recorded(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime.torch, "compile", lambda model, **kwargs: model)  # "compiled", yet nothing compiles
    with pytest.warns(UserWarning, match="first step compiled nothing"):
        result = train(QUICK, tmp_path / "run", progress=False, compile=True, device="cpu")
    assert result["compiled"] is False


def test_the_recompile_budget_holds_over_a_whole_grid_in_one_process(tmp_path, monkeypatch):
    """Every configuration of exp2-kernels compiles for real, one after another in one process, under a limit
    of 2 recompiles (torch's is 8): the compiler's state is reset between runs. Without the reset the third
    configuration runs uncompiled, and the record says so."""
    import torch._dynamo

    monkeypatch.setattr(runtime, "COMPILE_BACKEND", "eager")
    grid = gmmlib.experiments.get_experiment("exp2-kernels").configs("quick", "synthetic")
    distinct = [c for c in grid if c.seed == 0]
    assert len({c.key() for c in distinct}) > 2

    def first_steps(configs, folder):
        out = []
        for c in configs:
            run = setup(c, tmp_path / folder / c.key(), compile=True, device="cpu")
            x, y = next(iter(run.batches(0)))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                train_step(run, x, y, 1)
            out.append(run.compiled)
        return out

    with torch._dynamo.config.patch(recompile_limit=2):
        assert first_steps(distinct, "reset") == [True] * len(distinct)
        monkeypatch.setattr(torch._dynamo, "reset", lambda: None)  # the old behaviour: state carried over
        assert first_steps(distinct, "carried")[-1] is False  # detected, not recorded as compiled
    monkeypatch.undo()
    torch._dynamo.reset()  # the frames that hit the limit stay skipped otherwise


def test_hardware_kind_tells_a_t4_from_an_h100():
    def record(gpu, capability):
        hardware = {"device": "cuda:0", "gpu": gpu, **({"gpu_capability": capability} if capability else {})}
        return {"hardware": hardware, "config": {"data_path": "batched"}}

    assert hardware_kind(record("Tesla T4", "7.5")) == "cuda T4 7.5, batched"
    assert hardware_kind(record("NVIDIA H100 80GB HBM3", "9.0")) == "cuda H100 9.0, batched"
    assert hardware_kind(record("NVIDIA L40S", "8.9")) == "cuda NVIDIA L40S 8.9, batched"  # not an L4
    assert hardware_kind(record("H200", None)) == "cuda, batched"  # recorded before the capability was


# ---- 1. the mask stays float32 under autocast ------------------------------------------------------------


def test_the_mask_reaches_attention_in_float32_under_autocast(monkeypatch):
    seen = []
    real_apply, real_logits = attention._BlockedMaskedAttention.apply, attention.masked_logits
    monkeypatch.setattr(
        attention._BlockedMaskedAttention, "apply", lambda q, k, v, m, *a: seen.append(m) or real_apply(q, k, v, m, *a)
    )
    import gmmlib.models.cait as cait

    monkeypatch.setattr(cait, "masked_logits", lambda q, k, m, c, s: seen.append(m) or real_logits(q, k, m, c, s))
    for family in ("vit", "cait"):
        seen.clear()
        torch.manual_seed(0)
        model = gmmlib.create_model(family, mask="gmm", **PRESETS["quick"].model_overrides[family]).eval()
        mask = next(m for m in model.modules() if isinstance(m, gmmlib.masks.AttentionMask))
        with torch.no_grad():
            exact = mask()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                model(torch.randn(2, 3, 32, 32))
        seen[:] = [m for m in seen if m is not None]  # CaiT's class attention has no mask
        assert seen and all(m.dtype == torch.float32 for m in seen), (family, [m.dtype for m in seen])
        n = exact.shape[-1]
        scale = model.blocks[0].attn.scale if family == "vit" else 1.0  # the fused kernel gets it folded in
        torch.testing.assert_close(seen[0][..., -n:, -n:], exact * scale, rtol=0, atol=0)  # not rounded at all
        assert all(p.dtype == torch.float32 for p in mask.parameters())


# ---- 1. FlexAttention's math for the GMM, and whole models compiled without graph breaks --------------------


@pytest.mark.parametrize("head_dim", [16, 48])  # 48: PiT's head dimension
def test_flex_attention_math_matches_the_manual_path_with_gradients(monkeypatch, head_dim):
    """FlexAttention's dense implementation (its math on CPU; the GPU kernels are checked against it upstream),
    with the GMM as a score modification capturing a mask that needs gradients: forward and the gradients of
    q, k, v, alpha and sigma equal the manual path's."""
    import torch.nn.attention.flex_attention as flex

    monkeypatch.setattr(flex, "_validate_device", lambda q, k, v: None)  # its backward is refused on CPU
    torch.manual_seed(0)
    mask = gmmlib.masks.create("gmm", grid=(4, 4), num_heads=2, num_kernels=3)
    q, k, v = (torch.randn(2, 2, 17, head_dim, requires_grad=True) for _ in range(3))  # CLS + 16 patches

    def run(backend):
        for t in (q, k, v):
            t.grad = None
        mask.zero_grad()
        out = attention.masked_attention(q, k, v, mask, backend=backend)
        out.square().sum().backward()
        return [out.detach(), q.grad, k.grad, v.grad, mask.alpha.grad, mask.sigma.grad]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # flex warns that it runs uncompiled
        flexed = run("flex")
    for name, a, b in zip(["out", "q", "k", "v", "alpha", "sigma"], flexed, run("manual")):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["vit", "cait", "pit", "swin", "t2t"])
def test_every_family_compiles_in_one_graph_under_autocast(family):
    """fullgraph: a graph break anywhere (the float32 mask under autocast included) is an error."""
    torch._dynamo.reset()  # no state of other tests' compilations
    torch.manual_seed(0)
    model = gmmlib.create_model(family, mask="gmm", num_classes=10, **PRESETS["quick"].model_overrides[family])
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = compiled(torch.randn(2, 3, 32, 32))
    out.float().square().mean().backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if "mask" in n)
    torch._dynamo.reset()


def test_flex_attention_is_off_unless_the_plan_turns_it_on(monkeypatch):
    assert attention._flex_enabled is False
    _fake_gpu(monkeypatch, (7, 5), version=NEW)
    monkeypatch.setattr(runtime, "COMPILE_BACKEND", "eager")
    runtime.compile_model(torch.nn.Linear(2, 2), plan_for("cuda:0", PRESETS["paper"], compile=True))
    assert attention._flex_enabled is False  # T4: inductor's plain ops, never FlexAttention
    _fake_gpu(monkeypatch, (9, 0), version=NEW)
    runtime.compile_model(torch.nn.Linear(2, 2), plan_for("cuda:0", PRESETS["paper"]))
    assert attention._flex_enabled is True


# ---- 2. gmmlib env ----------------------------------------------------------------------------------------


def _env(capsys, *args):
    assert main(["env", *args]) == 0
    return capsys.readouterr().out.splitlines()


def test_env_prints_this_machines_plan_and_any_gpus(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    here = _env(capsys, "--data", str(tmp_path), "--output", str(tmp_path / "drive"))
    for line in ("device: cpu", "precision: float32", "compile: no", "attention: fused", "workers: 0"):
        assert line in here
    assert (
        f"results: {tmp_path / 'drive' / 'results'}" in here and f"checkpoints: {tmp_path / 'drive' / 'runs'}" in here
    )
    assert any(line.startswith("data: cifar10: missing") for line in here)
    t4 = _env(capsys, "--gpu", "T4")
    assert {"precision: float16", "compile: no", "grad scaler: yes", "capability: 7.5"} <= set(t4)
    assert _env(capsys, "--gpu", "t4") == t4  # as a Colab user types it
    h100 = _env(capsys, "--gpu", "H100")
    assert {"precision: bfloat16", "compile: yes", "cuda graphs: yes", "attention: flex"} <= set(h100)
    assert "compile: no" in _env(capsys, "--gpu", "H100", "--torch", "2.5.1")
    minutes = [line for line in t4 + h100 if line.startswith("minutes per paper run: ")]
    assert len(minutes) == 2 and all("an estimate, not a measurement" in line for line in minutes)
    assert main(["env", "--gpu", "V100"]) == 2 and "invalid choice: 'V100'" in capsys.readouterr().err


def test_the_estimate_comes_from_the_cost_model_and_a_stated_throughput():
    t4 = plan_for("cuda", PRESETS["paper"], capability=(7, 5), gpu_name="T4")
    a100 = plan_for("cuda", PRESETS["paper"], capability=(8, 0), gpu_name="A100")
    flops, images = 0.369e9, 15_000_000
    expected = images * 3 * flops / (65e12 * machine.ASSUMED_SHARE_OF_PEAK["eager"]) / 60
    assert machine.estimate_minutes(t4, "T4", flops, images) == pytest.approx(expected)
    assert machine.paper_run_minutes(t4) > machine.paper_run_minutes(a100) > 0
    assert machine.paper_run_minutes(plan_for("cpu", PRESETS["paper"])) is None


# ---- 3. safe scale-out ----------------------------------------------------------------------------------


def test_parallel_runs_spread_over_the_gpus(monkeypatch):
    _fake_gpu(monkeypatch, (8, 0), count=3)
    assert runner.job_devices(None, 5) == ["cuda:0", "cuda:1", "cuda:2", "cuda:0", "cuda:1"]
    assert runner.job_devices("cuda", 2) == ["cuda:0", "cuda:1"]
    assert runner.job_devices("cuda:1", 2) == ["cuda:1", "cuda:1"]  # asked for one: all there
    assert runner.job_devices("cpu", 2) == ["cpu", "cpu"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runner.job_devices(None, 2) == [None, None]


def _pid(job: int) -> int:
    return os.getpid()


@pytest.mark.slow
def test_every_parallel_run_gets_a_fresh_process():
    """Compiled graphs, CUDA-graph pools, the recompile count and a CUDA context broken by an error stay with
    the run that made them: three runs, two at a time, three processes."""
    seen = list(runner._in_fresh_processes(_pid, [0, 1, 2], 2))
    assert sorted(job for job, _, _ in seen) == [0, 1, 2]
    pids = [pid for _, status, pid in seen if status == "ok"]
    assert len(set(pids)) == 3 and os.getpid() not in pids


def test_ranks_agree_on_a_non_finite_loss(monkeypatch, tmp_path):
    """Rank 0's losses are finite, rank 1's (simulated through the all-reduce) are not: rank 0 raises too."""
    from torch import distributed as dist

    run = setup(QUICK, tmp_path / "run", device="cpu")
    run.distributed = runtime.Distributed(rank=0, world_size=2, local_rank=0, backend="gloo")

    def other_rank_diverged(tensor, *args, **kwargs):
        tensor[0, 1], tensor[1, 1] = 3, float("nan")  # rank 1: NaN at its third step

    monkeypatch.setattr(dist, "all_reduce", other_rank_diverged)
    with pytest.raises(TrainingDiverged, match="loss is nan at epoch 1, step 3 .* on rank 1 of 2") as e:
        check_finite(run, torch.ones(8), 8, 0)
    assert e.value.every_rank


_FAILING_RANK = """
import os, sys
import gmmlib.training.loop as loop
real = loop.train_step
def diverging(run, x, y, step):
    loss = real(run, x, y, step)
    return loss * float("nan") if os.environ["RANK"] == "1" else loss
loop.train_step = diverging
from gmmlib.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
@pytest.mark.xdist_group("distributed")
def test_a_rank_that_diverges_ends_the_torchrun_job_on_every_rank_with_one_error(tmp_path):
    helper = tmp_path / "helper.py"
    helper.write_text(_FAILING_RANK)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GMMLIB_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(helper)]
    cmd += ["run", "headline", "--preset", "quick", "--dataset", "synthetic", "--device", "cpu", "--no-progress"]
    cmd += ["--output", str(tmp_path / "out")]  # several runs: a rank that moved on would wait for the other
    start = time.monotonic()
    job = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    assert job.returncode != 0
    assert time.monotonic() - start < 300  # promptly: not a process-group timeout
    errors = [line for line in job.stderr.splitlines() if "gmmlib: error:" in line]
    assert len(errors) == 1, job.stderr[-3000:]
    assert "loss is nan" in errors[0] and "on rank 1 of 2" in errors[0]


# ---- 4. download, one output setting --------------------------------------------------------------------


def test_download_asks_torchvision_for_every_split(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    calls = []

    class FakeSVHN:
        split_list = tvd.SVHN.split_list

        def __init__(self, root, split, download):
            calls.append(("svhn", split, download))
            Path(root).mkdir(parents=True, exist_ok=True)
            (Path(root) / self.split_list[split][1]).write_bytes(b"")

    class FakeCIFAR:
        base_folder = "cifar-10-batches-py"

        def __init__(self, root, train, download):
            calls.append(("cifar10", train, download))
            (Path(root) / self.base_folder).mkdir(parents=True)

    monkeypatch.setattr(tvd, "SVHN", FakeSVHN)
    monkeypatch.setattr(tvd, "CIFAR10", FakeCIFAR)
    assert gmmlib.data.fetch("svhn", tmp_path) == ["train", "test"]
    assert calls == [("svhn", "train", True), ("svhn", "test", True)]
    calls.clear()
    assert gmmlib.data.fetch("cifar10", tmp_path / "c") == ["train", "test"]
    assert calls == [("cifar10", True, True)]  # one archive holds both splits
    calls.clear()
    gmmlib.data.fetch("svhn", tmp_path)  # already there: nothing fetched again
    assert calls == []


def test_train_and_run_pass_download_on(tmp_path, monkeypatch):
    from gmmlib import data as gdata

    asked = []

    def load(name, split, root=None, download=False, **kw):
        asked.append((split, download))
        raise gdata.DataNotFoundError("stop here")

    monkeypatch.setattr(gdata, "load_arrays", load)
    with pytest.raises(gdata.DataNotFoundError):
        train(QUICK, tmp_path / "run", progress=False, download=True)
    assert asked == [("train", True)]
    fetched = []
    monkeypatch.setattr(gdata, "fetch", lambda name, root=None: fetched.append(name))
    monkeypatch.setattr(runner, "_train_job", lambda job: ("failed", "not trained in this test"))
    args = ["run", "headline", "--preset", "quick", "--dataset", "synthetic", "--no-progress", "--download"]
    assert main([*args, "--output", str(tmp_path / "o")]) == 2
    assert fetched == ["synthetic"]


def test_one_setting_moves_results_and_checkpoints(tmp_path, monkeypatch):
    assert machine.output_folders(tmp_path) == (tmp_path / "results", tmp_path / "runs")
    monkeypatch.setenv("GMMLIB_OUTPUT", str(tmp_path / "drive"))
    assert machine.output_folders() == (tmp_path / "drive" / "results", tmp_path / "drive" / "runs")
    assert machine.output_folders(results=tmp_path / "r") == (tmp_path / "r", tmp_path / "drive" / "runs")
    monkeypatch.setenv("GMMLIB_RESULTS", str(tmp_path / "env-results"))  # the more specific variable wins
    assert machine.output_folders()[0] == tmp_path / "env-results"
    monkeypatch.chdir(tmp_path)
    args = ["train", "--dataset", "synthetic", "--preset", "quick", "--epochs", "1", "--no-progress"]
    assert main([*args, "--output", str(tmp_path / "drive2")]) == 0
    assert (tmp_path / "drive2" / "runs" / "vit-none-default-synthetic-s0-quick" / "result.json").is_file()


# ---- 5. tools/gpu_session.py ----------------------------------------------------------------------------


def _runs(tmp_path: Path, checkpoint_bytes: int) -> tuple[Path, Path]:
    results, runs = tmp_path / "results", tmp_path / "runs"
    (results / "records").mkdir(parents=True)
    (results / "records" / "abc.json").write_text(json.dumps({"key": "abc"}))
    for name, finished in (("vit-s0", True), ("gmm-s0", False), ("gmm-s1", False)):
        (runs / name).mkdir(parents=True)
        (runs / name / "progress.json").write_text("{}")
        (runs / name / "checkpoint.pt").write_bytes(os.urandom(checkpoint_bytes))  # incompressible
        if finished:
            (runs / name / "result.json").write_text("{}")
    return results, runs


def test_the_session_packs_what_a_resume_needs_and_unpacks_it(tmp_path, monkeypatch):
    results, runs = _runs(tmp_path, 4000)
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setattr(gpu_session, "PART_BYTES", 1000)
    monkeypatch.setattr(gpu_session, "MAX_PARTS", 7)
    parts = gpu_session.pack(results, runs, out, log_to=out)
    assert len(parts) <= 7 and all(p.stat().st_size <= 1000 for p in parts)
    with tarfile.open(fileobj=io.BytesIO(b"".join(p.read_bytes() for p in parts))) as tar:
        names = set(tar.getnames())
    # one checkpoint fits (the other is named in the log); a finished run's is not needed
    assert "runs/vit-s0/checkpoint.pt" not in names and "results/records/abc.json" in names
    packed = {n for n in names if n.endswith("checkpoint.pt")}
    assert len(packed) == 1 and "not packed" in (out / "session.log").read_text()
    restored = gpu_session.unpack(out, tmp_path / "next", "results-gpu", "runs-gpu")
    assert packed <= set(restored)
    name = next(iter(packed)).split("/")[1]
    assert (tmp_path / "next" / "runs-gpu" / name / "checkpoint.pt").read_bytes() == (
        runs / name / "checkpoint.pt"
    ).read_bytes()


def _tf32(t: torch.Tensor, nearest: bool) -> torch.Tensor:
    """``t`` rounded to TF32's 10 mantissa bits, as cuDNN rounds convolution inputs (nearest) or truncated."""
    bits = t.contiguous().view(torch.int32)
    return ((bits + 0x1000 if nearest else bits) & ~0x1FFF).view(torch.float32)


def test_the_parity_tolerance_is_sized_for_tf32_convolutions(monkeypatch):
    real = torch.nn.Conv2d._conv_forward
    worst = 0.0
    for nearest in (True, False):

        def tf32_forward(model, x, nearest=nearest):
            with monkeypatch.context() as m:
                m.setattr(
                    torch.nn.Conv2d,
                    "_conv_forward",
                    lambda s, i, w, b: real(s, _tf32(i, nearest), _tf32(w, nearest), b),
                )
                return model(x)

        worst = max(worst, gpu_session._logit_parity(torch.device("cpu"), tf32_forward))
    assert gpu_session.parity_tolerance(False) < worst < gpu_session.parity_tolerance(True)  # PiT-GMM: about 1.2e-3


def test_the_compile_check_fails_when_the_run_trained_uncompiled():
    ok = {"compiled": True, "history": [{"train_loss": 1.5}]}
    assert gpu_session.compiled_training_verdict(ok) == 1.5
    fell_back = {"compiled": False, "history": [{"train_loss": 1.5}], "run_plan": {"notes": ["compilation fell back"]}}
    with pytest.raises(RuntimeError, match="trained uncompiled .*compilation fell back"):
        gpu_session.compiled_training_verdict(fell_back)
