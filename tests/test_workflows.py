"""The public repository's automation, checked offline: the GitHub workflows in .github/workflows
(CI and the Pages deployment of the book), the Binder set-up in binder/ and the README's badges.

The workflows run only on GitHub. Here they pass actionlint (with shellcheck on every ``run:``
script) and zizmor's offline audits, and their steps are read to check that they run what the README
and the Makefile say: CI runs the README's test command, the Pages workflow builds the README's book
command and uploads the folder that command writes. The linters come with the ``test`` extra; a
missing one fails the test, it is never skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
CI = WORKFLOWS / "ci.yml"
BOOK = WORKFLOWS / "book.yml"
BINDER = ROOT / "binder"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"

sys.path.insert(0, str(ROOT / "tools"))
import badges
import build_book

# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------


def _tool(name: str) -> str:
    """A command-line tool of the test extra: beside this Python first (the venv), then on PATH."""
    here = Path(sys.executable).with_name(name)
    path = str(here) if here.is_file() else shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: it comes with the test extra (pip install -e '.[test]')")
    return path


def _workflow(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    if True in data:  # YAML 1.1 reads the key `on` as a boolean
        data["on"] = data.pop(True)
    return data


def _steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def _uses(step: dict, action: str) -> bool:
    return step.get("uses", "").split("@")[0] == action


def _run_lines(step: dict) -> list[str]:
    """The commands of a ``run:`` step: one per line, comments and blank lines dropped."""
    lines = [line.strip() for line in step.get("run", "").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _constraints() -> dict[str, str]:
    """{package: version} of the exact pins in .ci/constraints.txt."""
    pins = {}
    for line in (ROOT / ".ci" / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.strip().lower()] = version.strip()
    return pins


def _makefile_recipes() -> dict[str, list[str]]:
    """{target: recipe commands} of the Makefile, continuation lines joined."""
    recipes: dict[str, list[str]] = {}
    current = None
    pending = ""
    for raw in (ROOT / "Makefile").read_text().splitlines():
        if raw.startswith("\t") and current is not None:
            line = pending + raw.strip()
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            pending = ""
            if not line.startswith("#"):
                recipes[current].append(" ".join(line.split()))
            continue
        match = re.match(r"^([A-Za-z0-9_.$()/-]+)\s*:(?!=)", raw)
        current = match.group(1) if match else None
        if current is not None:
            recipes.setdefault(current, [])
    return recipes


def _readme_commands() -> dict[str, str]:
    """The README's one-line ``make`` commands, keyed by what their Makefile recipe does:
    ``test`` for the one that runs pytest, ``book`` for the one that builds the book's HTML."""
    recipes = _makefile_recipes()
    found = {}
    for block in re.findall(r"^```[^\n]*\n(.*?)^```", (ROOT / "README.md").read_text(), flags=re.MULTILINE | re.DOTALL):
        command = block.strip()
        if "\n" in command or not re.fullmatch(r"make [\w-]+", command):
            continue
        recipe = " ".join(recipes.get(command.split()[1], []))
        if "-m pytest" in recipe:
            found["test"] = command
        elif "tools/build_book.py" in recipe and "--stage" not in recipe:
            found["book"] = command
    assert set(found) == {"test", "book"}, f"the README's make commands, by role: {found}"
    return found


# ------------------------------------------------------------------------------------------------
# the linters
# ------------------------------------------------------------------------------------------------


def test_both_workflows_exist():
    assert {"book.yml", "ci.yml"} <= {p.name for p in WORKFLOWS.glob("*.y*ml")}
    assert not list(WORKFLOWS.glob("*.yaml")), "use .yml: the linters below read *.yml"


def test_actionlint_finds_nothing():
    """actionlint: syntax, expressions, action inputs, and shellcheck on every run: script."""
    proc = subprocess.run(
        [
            _tool("actionlint"),
            "-no-color",
            f"-shellcheck={_tool('shellcheck')}",  # the test extra's, so every machine checks the same
            "-pyflakes=",  # no python run: scripts here
            *sorted(str(p) for p in WORKFLOWS.glob("*.yml")),
        ],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, f"actionlint found problems:\n{proc.stdout}\n{proc.stderr}"


def test_zizmor_finds_nothing_offline():
    """zizmor's offline audits (template injection, permissions, credentials, pinning, caches...)."""
    env = {k: v for k, v in os.environ.items() if k not in ("GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN")}
    proc = subprocess.run(
        [_tool("zizmor"), "--offline", "--no-progress", "--color=never", "--format=plain", ".github/workflows"],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, f"zizmor found problems (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    for name in ("ci.yml", "book.yml"):  # audited, not skipped as unreadable
        assert f"completed .github/workflows/{name}" in proc.stderr, proc.stderr


def test_actions_are_pinned_by_commit_with_their_version():
    """Every action by full commit SHA with its release in a comment, checkouts without credentials."""
    for path in WORKFLOWS.glob("*.yml"):
        for line in path.read_text().splitlines():
            if "uses:" in line:
                assert re.search(r"uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*$", line), f"{path.name}: {line}"
        for job in _workflow(path)["jobs"].values():
            for step in _steps(job):
                if _uses(step, "actions/checkout"):
                    assert step.get("with", {}).get("persist-credentials") is False, path.name


# ------------------------------------------------------------------------------------------------
# CI: the README's test command
# ------------------------------------------------------------------------------------------------


def test_ci_runs_the_readme_test_command_on_311_and_312():
    wf = _workflow(CI)
    assert {"push", "pull_request"} <= set(wf["on"])
    (job,) = wf["jobs"].values()
    assert job["runs-on"] == "ubuntu-latest"
    assert [str(v) for v in job["strategy"]["matrix"]["python"]] == ["3.11", "3.12"]
    setup = next(s for s in _steps(job) if _uses(s, "actions/setup-python"))
    assert setup["with"]["python-version"] == "${{ matrix.python }}"
    command = _readme_commands()["test"]
    runs = [s for s in _steps(job) if command in _run_lines(s)]
    assert len(runs) == 1 and _run_lines(runs[0]) == [command], f"no step runs exactly {command!r}"
    assert command in (ROOT / ".ci" / "run").read_text().splitlines()  # the project's own CI too


def test_ci_keeps_the_browser_check():
    """`make test` ends with the headless-browser check, and CI neither skips it nor lacks a browser."""
    recipe = _makefile_recipes()["test"]
    assert any("-m browser" in line and "tests/test_book_html.py" in line for line in recipe), recipe
    assert "GMMLIB_SKIP_BROWSER" not in CI.read_text()
    (job,) = _workflow(CI)["jobs"].values()
    names = [s.get("name", "") for s in _steps(job)]
    browser = next(i for i, s in enumerate(_steps(job)) if "/usr/local/bin/chromium" in s.get("run", ""))
    test = next(i for i, s in enumerate(_steps(job)) if _run_lines(s) == [_readme_commands()["test"]])
    assert browser < test, names
    # the names the browser test looks for
    source = (ROOT / "tests" / "test_book_html.py").read_text()
    assert '"chromium"' in source and '"chromedriver"' in source


def test_ci_caches_the_venv_keyed_on_pyproject_and_constraints():
    (job,) = _workflow(CI)["jobs"].values()
    caches = [s for s in _steps(job) if _uses(s, "actions/cache") and s["with"]["path"] == ".venv"]
    assert len(caches) == 1
    key = caches[0]["with"]["key"]
    files = re.search(r"hashFiles\(([^)]*)\)", key)
    assert files and {"'pyproject.toml'", "'.ci/constraints.txt'"} <= {f.strip() for f in files.group(1).split(",")}
    assert "python-version" in key  # a venv links to its exact interpreter


@pytest.mark.parametrize("path", [CI, BOOK], ids=["ci", "book"])
def test_workflows_install_the_cpu_build_of_the_pinned_torch(path):
    """The CPU wheels from PyTorch's index, at the versions of .ci/constraints.txt (which `make`
    then finds satisfied: ==2.14.1 matches 2.14.1+cpu), before the README's command runs."""
    wf = _workflow(path)
    assert wf["env"]["TORCH_INDEX"] == CPU_INDEX
    pins = dict(p.split("==") for p in wf["env"]["TORCH_PINS"].split())
    assert pins == {name: f"{version}+cpu" for name, version in _constraints().items() if name.startswith("torch")}
    (job,) = [j for j in wf["jobs"].values() if any("make " in s.get("run", "") for s in _steps(j))]
    steps = _steps(job)
    install = next(i for i, s in enumerate(steps) if '--index-url "$TORCH_INDEX" $TORCH_PINS' in s.get("run", ""))
    make = next(i for i, s in enumerate(steps) if any(line.startswith("make ") for line in _run_lines(s)))
    assert install < make
    assert ".venv/bin/python -m pip install" in steps[install]["run"]  # into the venv that make uses
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any("+cpu" in d or "download.pytorch.org" in d for d in project["dependencies"])


# ------------------------------------------------------------------------------------------------
# The book on GitHub Pages
# ------------------------------------------------------------------------------------------------


def test_pages_workflow_builds_the_readme_book_command_in_full_mode():
    wf = _workflow(BOOK)
    assert wf["on"]["push"]["branches"] == ["main"] and "workflow_dispatch" in wf["on"]
    build = wf["jobs"]["build"]
    command = _readme_commands()["book"]
    assert [s for s in _steps(build) if _run_lines(s) == [command]], f"no step runs exactly {command!r}"
    # GitHub sets CI=true, which alone selects QUICK mode: the job must ask for FULL mode
    from gmmlib.book.settings import is_quick

    env = {k: str(v) for k, v in build.get("env", {}).items()}
    assert is_quick({"CI": "true"}) and not is_quick({"CI": "true", **env})


def test_pages_workflow_uploads_the_folder_make_book_writes():
    """upload-pages-artifact takes _build/html, which is where `make book` writes the HTML:
    the Makefile runs tools/build_book.py on the repository, which runs jupyter-book without an
    output option (so into <source>/_build/html) and fails when a page is missing there."""
    build = _workflow(BOOK)["jobs"]["build"]
    (upload,) = [s for s in _steps(build) if _uses(s, "actions/upload-pages-artifact")]
    assert os.path.normpath(upload["with"]["path"]) == os.path.join("_build", "html")

    recipe = _makefile_recipes()[_readme_commands()["book"].split()[1]]
    assert recipe == ["$(PY) tools/build_book.py"], recipe  # default --source: the repository itself
    assert build_book.ROOT == ROOT


def test_build_book_runs_jupyter_book_into_build_html(tmp_path, monkeypatch):
    """What tools/build_book.py does, without running jupyter-book: the command line has no
    output option, and the check looks for every page of _toc.yml in <source>/_build/html."""
    seen = {}

    class FakeJupyterBook:
        def __init__(self, cmd, **kwargs):
            seen["cmd"] = cmd
            self.stdout = iter(())

        def wait(self):
            return 0

    fake = SimpleNamespace(Popen=FakeJupyterBook, PIPE=subprocess.PIPE, STDOUT=subprocess.STDOUT)
    monkeypatch.setattr(build_book, "subprocess", fake)  # build_book's own name only
    assert build_book.build(ROOT, None, tmp_path / "log.txt") == 0
    cmd = seen["cmd"]
    assert cmd[1:3] == ["build", str(ROOT)]
    assert not {"--path-output", "--builder", "--toc", "--config"} & set(cmd), cmd

    source = build_book.stage(tmp_path / "book")
    (source / "_build").mkdir()
    log = source / "_build" / "log.txt"
    log.write_text("")
    pages = build_book.toc_files(source)
    assert [p for p in build_book.check(source, 0, log) if "page missing from the HTML" in p]
    for doc in pages:
        page = source / "_build" / "html" / f"{doc}.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text("<html></html>")
    assert build_book.check(source, 0, log) == []


def test_pages_workflow_caches_cifar10_where_the_book_reads_it_and_pip():
    build = _workflow(BOOK)["jobs"]["build"]
    data = build["env"]["GMMLIB_DATA"]
    assert data.startswith("${{ github.workspace }}/")
    relative = data.split("/", 1)[1]
    (cache,) = [s for s in _steps(build) if _uses(s, "actions/cache")]
    assert cache["with"]["path"] == f"{relative}/cifar-10-batches-py"  # torchvision's folder, which gmmlib reads
    download = next(s for s in _steps(build) if "torchvision.datasets.CIFAR10" in s.get("run", ""))
    assert download["if"] == f"steps.{cache['id']}.outputs.cache-hit != 'true'"
    assert "$GMMLIB_DATA" in download["run"] and "download=True" in download["run"]
    setup = next(s for s in _steps(build) if _uses(s, "actions/setup-python"))
    assert setup["with"]["cache"] == "pip"
    assert set(setup["with"]["cache-dependency-path"].split()) == {"pyproject.toml", ".ci/constraints.txt"}
    assert f"/{relative}/" in (ROOT / ".gitignore").read_text()  # the data never lands in git


def test_pages_deployment_follows_the_pages_actions_documentation():
    wf = _workflow(BOOK)
    assert wf["permissions"] == {}  # nothing by default; each job asks for what it needs
    assert wf["concurrency"] == {"group": "pages", "cancel-in-progress": False}
    build, deploy = wf["jobs"]["build"], wf["jobs"]["deploy"]
    assert build["permissions"] == {"contents": "read"}
    assert deploy["needs"] == "build"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"] == {"name": "github-pages", "url": "${{ steps.deployment.outputs.page_url }}"}
    (step,) = _steps(deploy)
    assert _uses(step, "actions/deploy-pages") and step["id"] == "deployment"


# ------------------------------------------------------------------------------------------------
# Binder and the launch buttons
# ------------------------------------------------------------------------------------------------


def test_launch_buttons_are_on():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    launch = config["launch_buttons"]
    assert launch["binderhub_url"] == "https://mybinder.org"
    assert launch["colab_url"] == "https://colab.research.google.com"
    assert launch["notebook_interface"] in badges.INTERFACES
    assert config["repository"]["url"].startswith("https://github.com/") and config["repository"]["branch"]


def test_binder_installs_the_cpu_torch_and_gmmlib_with_its_results():
    lines = [
        line.split("#", 1)[0].strip()
        for line in (BINDER / "requirements.txt").read_text().splitlines()
        if line.split("#", 1)[0].strip()
    ]
    assert f"--extra-index-url {CPU_INDEX}" in lines
    pins = dict(line.split("==") for line in lines if "==" in line)
    assert pins == {name: f"{version}+cpu" for name, version in _constraints().items() if name.startswith("torch")}
    # gmmlib editable: results_dir() is then the checkout's results/, and the book extra is real
    editable = [line for line in lines if line.startswith("-e ")]
    assert editable == ["-e .[book]"]
    assert "book" in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert re.fullmatch(r"python-3\.\d+", runtime)
    ci_pythons = [str(v) for v in _workflow(CI)["jobs"]["test"]["strategy"]["matrix"]["python"]]
    assert runtime.removeprefix("python-") in ci_pythons  # a version that CI tests
    for name in ("postBuild", "start"):
        assert os.access(BINDER / name, os.X_OK), f"binder/{name} must be executable"


def test_binder_scripts_pass_shellcheck():
    scripts = [str(BINDER / "postBuild"), str(BINDER / "start")]
    proc = subprocess.run([_tool("shellcheck"), "--shell=bash", *scripts], check=False, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_binder_start_points_gmmlib_at_the_recorded_results(tmp_path):
    """binder/start as Binder runs it (REPO_DIR is the checkout): gmmlib then finds results/."""
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "REPO_DIR": str(ROOT)}
    code = "from gmmlib.store import results_dir; d = results_dir(); print(d, any(d.iterdir()))"
    proc = subprocess.run(
        [str(BINDER / "start"), sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    where, nonempty = proc.stdout.split()[-2:]
    assert Path(where) == ROOT / "results" and nonempty == "True"
    proc = subprocess.run(
        [str(BINDER / "start"), "sh", "-c", 'echo "$GMMLIB_DATA"'], check=False, capture_output=True, text=True, env=env
    )
    assert proc.stdout.strip() == str(ROOT / "data")  # where binder/postBuild puts CIFAR-10


# ------------------------------------------------------------------------------------------------
# The README's badges
# ------------------------------------------------------------------------------------------------


def test_readme_badges_come_from_the_repository_url_in_config():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "badges.py"), "--check"], check=False, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    block = badges.readme_block((ROOT / "README.md").read_text())
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    owner, name = url.removeprefix("https://github.com/").strip("/").split("/")
    links = re.findall(r"\)\]\((https://[^)]+)\)", block)  # the targets, not the images
    assert len(links) == 4
    for link in links:  # every badge leads to this repository, its Pages site, or its notebooks
        assert f"/{owner}/{name}/" in link + "/" or link == f"https://{owner.lower()}.github.io/{name}/", link
    # the README's first lines, under the title
    lines = (ROOT / "README.md").read_text().splitlines()
    assert lines[0].startswith("# ") and lines[2] == badges.START


def test_badges_name_the_workflows_and_the_pages_address():
    block = badges.badges()
    url, owner, name = badges.github_repo()
    assert f"{url}/actions/workflows/{CI.name}/badge.svg" in block
    assert f"{url}/actions/workflows/{BOOK.name}/badge.svg" in block
    assert f"(https://{owner.lower()}.github.io/{name}/)" in block
    first = badges.first_notebook()
    assert (ROOT / first).is_file()
    assert badges.binder_url(first) in block and badges.colab_url(first) in block
