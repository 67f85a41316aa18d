"""One prepared sitting on a GPU machine: the CUDA checks, the benchmarks, the paper-scale headline.

A GPU lease is short (this project's: 15 minutes in all, at most 10 per command), so everything a
sitting should do is here, in stages, each inside a time budget, each writing what it found to
``--out`` (the device tool's ``$OUT``) even when a later stage fails or runs out of time:

* ``check``: the device's run plan (``gmmlib env``); every model family, with and without GMM,
  gives the same logits on the device as on CPU (to a tolerance sized for TF32 convolutions); the
  compiled GMM-ViT (FlexAttention where the plan has it) gives the eager loss and gradients; one
  short compiled training run (the gpu data path) really ran compiled and ends with a finite loss.
  Prints PASS or FAIL with the measured difference.
* ``bench``: ``benchmarks/gpu_throughput.py`` and ``benchmarks/gmm_overhead.py`` (on all cores).
* ``headline``: ``gmmlib run headline-paper`` until the budget ends. Its records, the runs'
  progress and the checkpoints of the runs still in progress (what a resume needs) are packed into
  ``headline-results.tar.gz``, in parts of at most 15 MB and at most 7 of them (the device tool
  brings back 8 files of at most 16 MB; the log is the eighth). The next sitting continues the
  runs with ``--resume-from`` pointing at the parts (carried in with the working tree).

    PYTHONPATH=. GMMLIB_DATA=data python tools/gpu_session.py --out $OUT --stages check,bench --budget 330
    PYTHONPATH=. GMMLIB_DATA=data python tools/gpu_session.py --out $OUT --stages headline --budget 560
    # the next sitting: continue the cut-off runs from the parts the last one brought back
    PYTHONPATH=. GMMLIB_DATA=data python tools/gpu_session.py --out $OUT --stages headline --resume-from last
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
MAX_PARTS = 7  # the device tool brings back 8 files; session.log is one
PACKED = "headline-results.tar.gz"
MIN_SECONDS = 10  # a command given less is not started

# Logit parity between CPU and GPU. Without TF32 both sides are float32: 1e-3. cuDNN convolutions use TF32 by
# default (torch.backends.cudnn.allow_tf32), which rounds their inputs to 10 mantissa bits (relative 2^-11);
# on CPU, rounding the conv inputs so moves PiT-GMM's logits by 1.18e-3, so TF32 gets 16 of those units
# (7.8e-3): a real bug moves logits by far more than the rounding of one patch embedding.
TF32_UNIT = 2.0**-11
PARITY_FLOAT32, PARITY_TF32 = 1e-3, 16 * TF32_UNIT


def parity_tolerance(tf32: bool) -> float:
    """The largest |logit difference| between CPU and the device that passes, with or without TF32."""
    return PARITY_TF32 if tf32 else PARITY_FLOAT32


def log(out: Path, text: str) -> None:
    """Print ``text`` and append it to ``out/session.log`` (written as it goes: a kill loses nothing)."""
    print(text, flush=True)
    with open(out / "session.log", "a") as f:
        f.write(text + "\n")


# ------------------------------------------------------------------------------------------ check


def _logit_parity(device: torch.device, forward: Optional[Callable] = None) -> float:
    """Largest |logit difference| between CPU and ``device``, over all families, without and with GMM.

    ``forward(model, x)`` runs the model on the device side (default: a plain call); the tests simulate TF32 there.
    """
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
                on_device = (forward or (lambda m, t: m(t)))(model.to(device), x.to(device)).cpu()
            worst = max(worst, (on_cpu - on_device).abs().max().item())
    return worst


def _compiled_gradients(device: torch.device) -> float:
    """Largest relative difference of loss and gradients between the eager and the compiled GMM-ViT.

    Compiled in one graph (``fullgraph``), with the run plan's attention path: a graph break or a
    fallback to eager is an error here, not a pass of eager against eager.
    """
    from gmmlib.attention import use_flex_attention
    from gmmlib.models.registry import create_model
    from gmmlib.training.config import PRESETS
    from gmmlib.training.plan import plan_for
    from gmmlib.training.runtime import compiled_graphs

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
    use_flex_attention(plan_for(device, PRESETS["paper"], compile=True).attention == "flex")
    torch._dynamo.reset()  # a graph cached by an earlier compile would count as none compiled here
    graphs = compiled_graphs()
    compiled = loss_and_grads(torch.compile(model, fullgraph=True))
    if compiled_graphs() == graphs:
        raise RuntimeError("torch.compile compiled nothing: the step ran eagerly")
    return max(((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item() for a, b in zip(compiled, eager))


def compiled_training_verdict(result: Dict) -> float:
    """The last loss of a compiled training run's result; a run that fell back to eager is an error, since a
    compile check that passes uncompiled checks nothing."""
    if not result.get("compiled"):
        notes = "; ".join((result.get("run_plan") or {}).get("notes") or []) or "no reason recorded"
        raise RuntimeError(f"the run trained uncompiled ({notes})")
    return result["history"][-1]["train_loss"]


def _compiled_training(device: torch.device, preset: str) -> float:
    """The last loss of one epoch of compiled GMM-ViT training on the gpu data path (synthetic data)."""
    from gmmlib.training.config import RunConfig
    from gmmlib.training.loop import train

    config = RunConfig(model="vit", mask="gmm", pool="gap", dataset="synthetic", preset=preset, epochs=1)
    with tempfile.TemporaryDirectory(prefix="gmmlib-session-") as tmp:
        result = train(config, tmp, device=str(device), progress=False, compile=True, data_pipeline="gpu")
    return compiled_training_verdict(result)


def check(args: argparse.Namespace, out: Path) -> bool:
    from gmmlib.experiments.machine import describe_machine

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    log(out, f"device {name}; torch {torch.__version__}")
    log(out, "\n".join(describe_machine(preset=args.preset, device=str(device))))
    tf32 = device.type == "cuda" and (torch.backends.cudnn.allow_tf32 or torch.backends.cuda.matmul.allow_tf32)
    tolerance = parity_tolerance(tf32)
    checks = {
        f"logits on the device equal CPU's (max |diff| < {tolerance:.2g}{', TF32' if tf32 else ''})": (
            lambda: _logit_parity(device),
            lambda v: v < tolerance,
        ),
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


def _tarball(results: Path, work_dir: Path, checkpoints: List[Path]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        if results.exists():
            tar.add(results, arcname="results")
        for progress in sorted(work_dir.glob("*/progress.json")):
            tar.add(progress, arcname=f"runs/{progress.parent.name}/progress.json")
        for ckpt in checkpoints:
            tar.add(ckpt, arcname=f"runs/{ckpt.parent.name}/checkpoint.pt")
    return buffer.getvalue()


def pack(results: Path, work_dir: Path, out: Path, log_to: Optional[Path] = None) -> List[Path]:
    """``results``, the runs' ``progress.json`` and the checkpoints of runs still in progress (those without a
    ``result.json``: what a resume needs) as ``headline-results.tar.gz``, in at most :data:`MAX_PARTS` parts
    of :data:`PART_BYTES`. Checkpoints that do not fit are left out, the largest first, and named in the log."""
    checkpoints = sorted(
        (c for c in work_dir.glob("*/checkpoint.pt") if not (c.parent / "result.json").exists()),
        key=lambda c: c.stat().st_size,
    )
    data = _tarball(results, work_dir, checkpoints)
    while len(data) > MAX_PARTS * PART_BYTES and checkpoints:
        left = checkpoints.pop()  # the largest: the fewest runs lose their progress
        if log_to is not None:
            log(log_to, f"not packed (over {MAX_PARTS} parts): {left}; that run restarts from epoch 0 elsewhere")
        data = _tarball(results, work_dir, checkpoints)
    parts = [data[i : i + PART_BYTES] for i in range(0, len(data), PART_BYTES)] or [b""]
    for stale in out.glob(PACKED + "*"):  # parts of an earlier pack would join into a broken archive
        stale.unlink()
    paths = []
    for i, part in enumerate(parts):
        path = out / (f"{PACKED}.part{i}" if len(parts) > 1 else PACKED)
        path.write_bytes(part)
        paths.append(path)
    return paths


def unpack(folder: Path, root: Path, results: str, work_dir: str) -> List[str]:
    """Join the parts :func:`pack` wrote into ``folder`` and extract them: ``results/`` into ``root/results``,
    ``runs/`` into ``root/work_dir``, so that the same headline command continues the runs. Returns the names."""
    parts = sorted(folder.glob(PACKED + ".part*"), key=lambda p: int(p.name.rsplit("part", 1)[1]))
    data = b"".join(p.read_bytes() for p in parts) if parts else (folder / PACKED).read_bytes()
    places = {"results": root / results, "runs": root / work_dir}
    names = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            top, _, rest = member.name.partition("/")
            if top not in places or not rest or ".." in Path(rest).parts or not (member.isfile() or member.isdir()):
                continue  # only what pack wrote, and nothing outside the two folders
            target = places[top] / rest
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            assert source is not None
            target.write_bytes(source.read())
            names.append(member.name)
    return names


def headline(args: argparse.Namespace, out: Path, seconds: float) -> bool:
    results, work_dir = ROOT / args.results, ROOT / args.work_dir
    if args.resume_from:
        restored = unpack(Path(args.resume_from), ROOT, args.results, args.work_dir)
        log(out, f"restored {len(restored)} file(s) from {args.resume_from} (checkpoints of runs in progress included)")
    cmd = [sys.executable, "-m", "gmmlib", "run", "headline-paper", "--preset", args.preset, "--no-progress"]
    cmd += ["--parallel", str(args.parallel), "--results", str(results), "--work-dir", str(work_dir)]
    cmd += ["--device", args.device] if args.device else []
    ok = _command(out, cmd, seconds - 20)  # 20 s to pack what there is
    parts = pack(results, work_dir, out, log_to=out)
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
    ap.add_argument("--resume-from", default=None, help="a folder with the parts an earlier sitting packed")
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
