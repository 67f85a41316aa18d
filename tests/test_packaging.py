"""The project frame: dependencies in sync, README commands, CI entry point."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[]", req.strip(), maxsplit=1)[0].lower()


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["book"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {p for p in pip if not p.startswith("-e")}
    assert listed == wanted, f"only in pyproject: {wanted - listed}; only in environment.yml: {listed - wanted}"


def test_constraints_pin_torch_exactly_and_pyproject_does_not():
    pins = (ROOT / ".ci" / "constraints.txt").read_text()
    assert "torch==" in pins and "torchvision==" in pins
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not any("==" in d for d in deps)
    assert any(d.startswith("timm>=1.0.16") for d in deps)


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^make \w+$", readme, flags=re.M)
    assert "make test" in commands and "make book" in commands
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert "make test" in ci


def test_each_library_module_stays_readable_top_to_bottom():
    """One idea per module: none grows past about 450 lines (split it along its seams instead)."""
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines()) for p in (ROOT / "gmmlib").rglob("*.py")}
    assert len(sizes) > 20
    assert not {p: n for p, n in sizes.items() if n > 450}


def _ruff(*args: str) -> subprocess.CompletedProcess:
    # the test extra installs ruff beside this Python; a missing one fails here, it is never skipped
    here = Path(sys.executable).with_name("ruff")
    ruff = str(here) if here.is_file() else shutil.which("ruff")
    assert ruff, "ruff is not installed: pip install -e '.[test]'"
    return subprocess.run([ruff, *args], cwd=ROOT, capture_output=True, text=True)


def test_code_is_linted_and_formatted():
    """pyflakes errors and syntax errors fail; the format is ruff's (line length 120; chapters 80)."""
    code = ["gmmlib", "tests", "tools", "benchmarks"]
    chapters = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "book").glob("*.ipynb"))
    for args in (
        ["check", "--select", "F,E9", *code],
        ["format", "--check", *code],
        # every chapter's install cell imports gmmlib to check that it installed: F401 is expected there
        ["check", "--select", "F,E9", "--ignore", "F401", "--config", "book/ruff.toml", *chapters],
        ["format", "--check", "--config", "book/ruff.toml", *chapters],
    ):
        done = _ruff(*args)
        assert done.returncode == 0, f"ruff {' '.join(args[:3])}: {done.stdout[-3000:]}{done.stderr[-1000:]}"
