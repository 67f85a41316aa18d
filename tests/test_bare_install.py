"""The command as ``pip install gmmlib`` installs it (issue 28, item 1): the wheel with its core dependencies
only, no extra, in a fresh virtual environment; every subcommand's ``--help``, and ``list``, ``report`` and
``status`` on the repository's results, exit 0 without a traceback.

The install is real (no path into this checkout's environment, which would hide a missing dependency);
torch and torchvision come from this machine's disk through ``.ci/constraints.txt``.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gmmlib.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
INSTALL_TIMEOUT_S = 1500  # a fresh torch with its CUDA libraries unpacks several GB


def _subcommands() -> list:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(action.choices)


def _run(argv: list, cwd: Path, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, argv))} exited {done.returncode}:\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return done


@pytest.mark.slow
@pytest.mark.timeout(INSTALL_TIMEOUT_S + 600)
def test_every_subcommand_works_after_a_plain_install_without_extras(tmp_path):
    # the wheel from a copy of what it packages: building in the checkout would leave build/ beside others' work
    src = tmp_path / "src"
    shutil.copytree(ROOT / "gmmlib", src / "gmmlib", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GMMLIB_", "PYTHON", "VIRTUAL_ENV"))}
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", wheels, src], tmp_path, env)
    (wheel,) = wheels.glob("gmmlib-*.whl")

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], tmp_path, env)
    python, started = venv / "bin" / "python", time.monotonic()
    pip = [python, "-m", "pip", "install", "--quiet", "-c", ROOT / ".ci" / "constraints.txt", wheel]
    _run(pip, tmp_path, env, timeout=INSTALL_TIMEOUT_S)
    print(f"fresh install of the wheel and its core dependencies: {time.monotonic() - started:.0f} s")
    listed = _run([python, "-m", "pip", "list", "--format=freeze"], tmp_path, env).stdout.lower()
    assert "pandas==" in listed and "jupyter-book" not in listed and "pytest==" not in listed, listed

    # run from a folder outside the checkout: the installed package is imported, never the checkout's
    gmmlib = venv / "bin" / "gmmlib"
    where = _run([python, "-c", "import gmmlib; print(gmmlib.__file__)"], tmp_path, env).stdout
    assert Path(where.strip()).is_relative_to(venv), where
    for command in _subcommands():
        assert "usage: gmmlib" in _run([gmmlib, command, "--help"], tmp_path, env).stdout
    results = ROOT / "results"
    assert "experiments:" in _run([gmmlib, "list"], tmp_path, env).stdout
    assert "gains in points" in _run([gmmlib, "report", "--results", results], tmp_path, env).stdout
    assert "experiment" in _run([gmmlib, "status", "--results", results], tmp_path, env).stdout
    staged = ["--staging", results / "pending"]
    assert "staged" in _run([gmmlib, "status", "--results", results, *staged], tmp_path, env).stdout
