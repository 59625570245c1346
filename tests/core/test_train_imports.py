"""core/train has no import loop: the graph of its modules' imports, those inside functions and under
``TYPE_CHECKING`` included (an import moved into a function to dodge a loop still counts), has no
cycle. ``python tests/core/test_train_imports.py [PACKAGE]`` prints the cycles of any core package."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: str) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports anywhere in its code (a package's import
    counts as its ``__init__``'s; ``from pkg import name`` as ``pkg.name`` when that is a module)."""
    folder = ROOT.joinpath(*package.split("."))
    modules = {_module(p): p for p in folder.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for mod, path in modules.items():
        here = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = here[: len(here) - node.level + 1] if node.level else []
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
                names = [target, *(f"{target}.{a.name}" for a in node.names)]
            for name in names:
                while name and name not in modules:  # core.train.loop.Loss -> core.train.loop
                    name = name.rpartition(".")[0]
                if name and name != mod:
                    found.add(name)
        graph[mod] = found
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_imports_inside_functions(tmp_path):
    graph = import_graph("core.train")
    assert "core.train.loop" in graph["core.train.job"]
    assert "core.train.request" in graph["core.train.prepare"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_core_train_has_no_import_loop():
    assert cycles(import_graph("core.train")) == []


if __name__ == "__main__":
    for found in cycles(import_graph(sys.argv[1] if len(sys.argv) > 1 else "core")):
        print(" <-> ".join(found))
