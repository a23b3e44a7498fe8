"""The package's structure: old import paths, the module map, the size and privacy rules."""

import ast
import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "src" / "emovox"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("emovox.api", "emovox.inference.recognizer"),
        ("emovox.experiment", "emovox.evaluation.experiment"),
        ("emovox.corpora", "emovox.data.corpora"),
        ("emovox.corpora.ravdess", "emovox.data.corpora.ravdess"),
        ("emovox.splits", "emovox.evaluation.splits"),
        ("emovox.backbones", "emovox.encoders"),
    ],
)
def test_old_import_paths_warn_and_give_the_new_module(old, new):
    code = (
        "import warnings, importlib, sys\n"
        "warnings.simplefilter('error', DeprecationWarning)\n"
        f"import {new} as new\n"
        "try:\n"
        f"    importlib.import_module({old!r})\n"
        "except DeprecationWarning as exc:\n"
        "    assert ' moved to emovox.' in str(exc), exc\n"
        "else:\n"
        "    raise SystemExit('no warning')\n"
        "warnings.simplefilter('ignore')\n"
        f"old = importlib.import_module({old!r})\n"
        "assert old is new, (old, new)\n"
        f"assert new.__spec__.name == {new!r}, new.__spec__.name\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr + r.stdout


def test_public_api_keeps_working():
    import emovox

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from emovox.experiment import ExperimentConfig, evaluate, load_dataset  # noqa: F401
    assert callable(emovox.load)
    assert emovox.Recognizer.__module__ == "emovox.inference.recognizer"
    assert importlib.import_module("emovox.data.corpora").scan


def test_module_map_in_docs_is_current():
    r = subprocess.run(
        [sys.executable, str(REPO / "bench" / "render_architecture.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def _modules():
    return sorted(PKG.rglob("*.py"))


def test_no_module_is_over_600_lines():
    long = {
        str(p.relative_to(PKG)): n
        for p in _modules()
        if (n := len(p.read_text().splitlines())) > 600
    }
    assert not long, long


def test_no_private_name_is_imported_across_modules():
    bad = []
    for p in _modules():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("emovox"):
                bad += [
                    f"{p.relative_to(PKG)}: {node.module}.{a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
            if isinstance(node, ast.ImportFrom) and any(
                part.startswith("_") and not part.startswith("__")
                for part in (node.module or "").split(".")
            ):
                bad.append(f"{p.relative_to(PKG)}: from {node.module}")
    assert not bad, bad


def _import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (at the top or inside functions; imports under
    ``if TYPE_CHECKING:`` only name types and are left out)."""
    names = {
        ".".join(("emovox", *p.relative_to(PKG).with_suffix("").parts)).removesuffix(".__init__")
        for p in _modules()
    }
    graph: dict[str, set[str]] = {}
    for p in _modules():
        me = ".".join(("emovox", *p.relative_to(PKG).with_suffix("").parts))
        me = me.removesuffix(".__init__")
        tree = ast.parse(p.read_text())
        typing_only = {
            id(n)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)
        }
        deps = set()
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    deps.add(full if full in names else node.module)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
        graph[me] = {d for d in deps if d in names and d != me}
    return graph


def test_no_import_circle_among_the_package_modules():
    graph = _import_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    # a package's __init__ re-exporting its own modules is not a circle between modules
    circles = [c for c in circles if not all(m.startswith(c[0]) for m in c)]
    assert not circles, circles
