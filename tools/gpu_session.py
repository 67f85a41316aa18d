"""One prepared sitting on a GPU machine: the CUDA checks, the benchmarks, the paper-scale headline.

A GPU lease is short (this project's: 15 minutes in all, at most 10 per command), so everything a
sitting should do is here, in stages, each inside a time budget, each writing what it found to
``--out`` (the device tool's ``$OUT``) even when a later stage fails or runs out of time:

* ``check``: every model family, with and without GMM, gives the same logits on the device as on
  CPU; the compiled GMM-ViT (FlexAttention on CUDA) gives the eager loss and gradients; one
  short compiled training run (CUDA graphs, fused AdamW, bf16, the gpu data path) ends with a
  finite loss. Prints PASS or FAIL with the measured difference.
* ``bench``: ``benchmarks/gpu_throughput.py`` and ``benchmarks/gmm_overhead.py`` (on all cores).
* ``headline``: ``gmmlib run headline-paper`` until the budget ends. Its records, the runs'
  progress and (when they end) weights are packed into ``headline-results.tar.gz``, in parts of
  at most 15 MB (the device tool brings back files of at most 16 MB). A run cut off by the budget
  keeps its per-epoch checkpoint in ``--work-dir``: the same command continues it while the
  machine is still warm.

    PYTHONPATH=. GMMLIB_DATA=data python tools/gpu_session.py --out $OUT --stages check,bench --budget 330
    PYTHONPATH=. GMMLIB_DATA=data python tools/gpu_session.py --out $OUT --stages headline --budget 560
    # on CPU, a rehearsal in a minute or two:
    python tools/gpu_session.py --out /tmp/session --device cpu --preset quick --budget 300
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("check", "bench", "headline")
PART_BYTES = 15 * 2**20  # under the device tool's 16 MB a file
MIN_SECONDS = 10  # a command given less is not started


def log(out: Path, text: str) -> None:
    """Print ``text`` and append it to ``out/session.log`` (written as it goes: a kill loses nothing)."""
    print(text, flush=True)
    with open(out / "session.log", "a") as f:
        f.write(text + "\n")


# ------------------------------------------------------------------------------------------ check


def _logit_parity(device: torch.device) -> float:
    """Largest |logit difference| between CPU and ``device``, over all families, without and with GMM."""
    from gmmlib.models.registry import create_model
    from gmmlib.training.config import PRESETS

    worst = 0.0
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    for family, size in PRESETS["cpu"].model_overrides.items():
        for mask in (None, "gmm"):
            torch.manual_seed(0)
            model = create_model(family, mask=mask, pool="gap" if family == "vit" else None, **size).eval()
            with torch.no_grad():
                on_cpu = model(x)
                on_device = model.to(device)(x.to(device)).cpu()
            worst = max(worst, (on_cpu - on_device).abs().max().item())
    return worst


def _compiled_gradients(device: torch.device) -> float:
    """Largest relative difference of loss and gradients between the eager and the compiled GMM-ViT."""
    from gmmlib.models.registry import create_model

    torch.manual_seed(0)
    model = create_model("vit", mask="gmm", pool="gap", dim=64, depth=2, num_heads=4, head_dim=16).to(device)
    model.eval()  # no dropout or drop-path draws: both see the same arithmetic (gradients flow all the same)
    x = torch.randn(8, 3, 32, 32, device=device)
    y = torch.arange(8, device=device) % 10

    def loss_and_grads(m: Callable) -> List[torch.Tensor]:
        model.zero_grad()
        loss = torch.nn.functional.cross_entropy(m(x), y)
        loss.backward()
        return [loss.detach()] + [p.grad.detach().clone() for p in model.parameters()]

    eager = loss_and_grads(model)
    compiled = loss_and_grads(torch.compile(model))
    return max(((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item() for a, b in zip(compiled, eager))


def _compiled_training(device: torch.device, preset: str) -> float:
    """The last loss of one epoch of compiled GMM-ViT training on the gpu data path (synthetic data)."""
    from gmmlib.training.config import RunConfig
    from gmmlib.training.loop import train

    config = RunConfig(model="vit", mask="gmm", pool="gap", dataset="synthetic", preset=preset, epochs=1)
    with tempfile.TemporaryDirectory(prefix="gmmlib-session-") as tmp:
        result = train(config, tmp, device=str(device), progress=False, compile=True, data_pipeline="gpu")
    return result["history"][-1]["train_loss"]


def check(args: argparse.Namespace, out: Path) -> bool:
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    log(out, f"device {name}; torch {torch.__version__}")
    checks = {
        "logits on the device equal CPU's (max |diff| < 1e-3)": (lambda: _logit_parity(device), lambda v: v < 1e-3),
        "compiled GMM-ViT: eager loss and gradients (max rel. diff < 1e-2)": (
            lambda: _compiled_gradients(device),
            lambda v: v < 1e-2,
        ),
        "compiled training, gpu data path: finite loss": (
            lambda: _compiled_training(device, args.preset),
            lambda v: v == v and abs(v) < float("inf"),
        ),
    }
    ok = True
    for what, (measure, passes) in checks.items():
        t = time.perf_counter()
        try:
            value = measure()
            good = passes(value)
            log(out, f"{'PASS' if good else 'FAIL'} {what}: {value:.3g} ({time.perf_counter() - t:.0f} s)")
        except Exception as e:  # a failed check is a finding, not the end of the sitting
            good = False
            log(out, f"FAIL {what}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        ok &= good
    return ok


# ------------------------------------------------------------------------------------------ bench, headline


def _command(out: Path, cmd: List[str], seconds: float, env: Optional[Dict[str, str]] = None) -> bool:
    """Run ``cmd`` from the repository root for at most ``seconds``, its output into the log."""
    log(out, "$ " + " ".join(cmd))
    if seconds < MIN_SECONDS:
        log(out, "skipped: the budget is spent")
        return False
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    # its own process group, so that a timeout also stops the processes it started (--parallel)
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        text, _ = proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # checkpoints are written atomically: nothing is half-written
        text, _ = proc.communicate()
        log(out, (text or "")[-6000:] + f"\nstopped after {seconds:.0f} s (the budget)")
        return False
    log(out, (text or "")[-6000:])
    return proc.returncode == 0


def bench(args: argparse.Namespace, out: Path, seconds: float) -> bool:
    py = sys.executable
    extra = ["--preset", args.preset] + (["--device", args.device] if args.device else [])
    if args.preset == "quick":  # a rehearsal: a few steps only
        extra += ["--steps", "3", "--rounds", "2", "--warmup", "1", "--parallel", "2"]
    start = time.monotonic()
    ok = _command(out, [py, "benchmarks/gpu_throughput.py", *extra], 0.75 * seconds)
    threads = str(os.cpu_count() or 1)
    left = seconds - (time.monotonic() - start)
    overhead = [py, "benchmarks/gmm_overhead.py", "--rounds", "10" if args.preset != "quick" else "2"]
    return _command(out, overhead, left, {"OMP_NUM_THREADS": threads}) and ok


def pack(results: Path, work_dir: Path, out: Path) -> List[Path]:
    """``results`` and the runs' ``progress.json`` as ``headline-results.tar.gz``, split into parts."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        if results.exists():
            tar.add(results, arcname="results")
        for progress in sorted(work_dir.glob("*/progress.json")):
            tar.add(progress, arcname=f"runs/{progress.parent.name}/progress.json")
    data = buffer.getvalue()
    parts = [data[i : i + PART_BYTES] for i in range(0, len(data), PART_BYTES)] or [b""]
    paths = []
    for i, part in enumerate(parts):
        path = out / (f"headline-results.tar.gz.part{i}" if len(parts) > 1 else "headline-results.tar.gz")
        path.write_bytes(part)
        paths.append(path)
    return paths


def headline(args: argparse.Namespace, out: Path, seconds: float) -> bool:
    results, work_dir = ROOT / args.results, ROOT / args.work_dir
    cmd = [sys.executable, "-m", "gmmlib", "run", "headline-paper", "--preset", args.preset, "--no-progress"]
    cmd += ["--parallel", str(args.parallel), "--results", str(results), "--work-dir", str(work_dir)]
    cmd += ["--device", args.device] if args.device else []
    ok = _command(out, cmd, seconds - 20)  # 20 s to pack what there is
    parts = pack(results, work_dir, out)
    log(out, f"packed {', '.join(p.name for p in parts)} ({sum(p.stat().st_size for p in parts) / 2**20:.1f} MB)")
    if len(parts) > 1:
        log(out, "join the parts with: cat headline-results.tar.gz.part* > headline-results.tar.gz")
    return ok


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder for the log and the packed results ($OUT)")
    ap.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, of {', '.join(STAGES)}")
    ap.add_argument("--budget", type=float, default=560, help="seconds for all stages together")
    ap.add_argument("--preset", default="paper", help="paper; quick for a rehearsal on CPU")
    ap.add_argument("--device", default=None, help="default: cuda when available")
    ap.add_argument("--parallel", type=int, default=2, help="headline runs side by side")
    ap.add_argument("--results", default="results-gpu", help="the headline's results folder (one kind of hardware)")
    ap.add_argument("--work-dir", default="runs-gpu", help="checkpoints of the headline's runs")
    args = ap.parse_args(argv)
    stages = [s for s in args.stages.split(",") if s]
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        ap.error(f"unknown stage(s) {unknown}; expected some of {list(STAGES)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + args.budget
    ok = True
    for stage in stages:
        left = deadline - time.monotonic()
        log(out, f"== {stage} ({left:.0f} s left)")
        if stage == "check":
            ok &= check(args, out)
        elif stage == "bench":
            # the headline, when it follows, gets what the benchmarks leave
            share = left if stage == stages[-1] else 0.6 * left
            ok &= bench(args, out, share)
        else:
            ok &= headline(args, out, left)
    log(out, f"== done: {'all passed' if ok else 'something failed (see above)'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
