"""The package's layout: dependencies point one way (no import cycle, nothing reaching back up), at most
ten modules at the top, no module over 450 lines, and chapters that import one namespace for the book."""

import ast
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gmmlib"

# Bottom to top: a module may import from its own layer and the ones below, never from above.
LAYERS = [
    {"files"},
    {"masks"},
    {"attention", "cost"},
    {"data", "models", "apply"},
    {"training"},
    {"store"},
    {"experiments"},
    {"stats"},
    {"readings", "analysis"},
    {"book"},
    {"cli", "__main__", ""},  # "" is the package's own __init__, which exports the public core
]


def _modules():
    out = {}
    for f in PACKAGE.rglob("*.py"):
        parts = list(f.relative_to(ROOT).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def _imports(name: str, path: Path, modules) -> set:
    """The gmmlib modules ``name`` imports, lazy imports inside functions included, ``if TYPE_CHECKING`` left out."""
    tree = ast.parse(path.read_text())
    skip = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
        for n in ast.walk(node)
    }
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    deps = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or id(node) in skip:
            continue
        if node.level:
            base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        if base.split(".")[0] != "gmmlib":
            continue
        for alias in node.names:
            deps.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {d for d in deps if d in modules and d != name}


def _graph():
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    return next(i for i, layer in enumerate(LAYERS) if top in layer)


def test_no_import_cycle():
    graph = _graph()

    def ancestors(m):
        parts = m.split(".")
        return {".".join(parts[:i]) for i in range(1, len(parts))}

    # importing a.b.c runs a/b/__init__ first, unless the importer lives inside a.b already
    edges = {
        m: deps | {a for d in deps for a in ancestors(d) if a != m and a not in ancestors(m)}
        for m, deps in graph.items()
    }
    state, path = {}, []

    def visit(m):
        state[m] = "open"
        path.append(m)
        for d in sorted(edges[m]):
            assert state.get(d) != "open", "import cycle: " + " -> ".join(path[path.index(d) :] + [d])
            if d not in state:
                visit(d)
        path.pop()
        state[m] = "done"

    for m in sorted(edges):
        if m not in state:
            visit(m)


def test_dependencies_point_down_the_layers():
    wrong = [
        f"{m} -> {d}"
        for m, deps in _graph().items()
        for d in deps
        if _layer(d) > _layer(m) and not (m == "gmmlib" and d.startswith("gmmlib."))
    ]
    assert wrong == [], "imports that reach back up: " + ", ".join(sorted(wrong))


def test_few_top_level_modules_and_none_too_long():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 10, top
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 450}
    assert long == {}


def test_chapters_import_one_namespace_for_the_book():
    """Chapters reach the readings, tables and figures through ``gmmlib.book``; the library they teach
    (masks, attention, models, data, training) they import directly."""
    taught = ("masks", "attention", "models", "data", "training", "cost", "apply")
    for nb in sorted((ROOT / "book").glob("*.ipynb")):
        for cell in json.loads(nb.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            for node in ast.walk(
                ast.parse("".join(l for l in cell["source"] if not l.lstrip().startswith(("%", "!"))))
            ):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gmmlib"):
                    names = [a.name for a in node.names]
                    sub = (node.module or "").split(".")[1:2]
                    ok = sub[0] in taught if sub else all(n in ("book", *taught) for n in names)
                    assert ok, f"{nb.name}: from {node.module} import {', '.join(names)}"
