"""Package-level promises: the layers import only what they may, core stays free of streamlit
(and light to import)."""

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "core"

# layer -> the layers it may import (besides itself); "cli" is core/cli.py and core/__main__.py, "errors" is
# core/errors.py (SegDashError), which every layer may import
ALLOWED = {
    "errors": set(),
    "data": {"errors"},
    "store": {"errors", "data"},
    "nn": {"errors", "data"},
    "train": {"errors", "data", "store", "nn"},
    "predict": {"errors", "data", "store", "nn"},
    "measure": {"errors", "data", "store"},
    "workflow": {"errors", "data", "store", "nn", "train", "predict", "measure"},
    "view": {"errors", "data"},
    "commands": {"errors", "data", "store", "nn", "train", "predict", "measure", "workflow"},
    "cli": {"errors", "data", "store", "nn", "train", "predict", "measure", "workflow", "commands"},
}

CODE = """
import sys, importlib, pkgutil
import core
mods = [m.name for m in pkgutil.walk_packages(core.__path__, "core.") if m.name != "core.__main__"]
for m in mods:
    importlib.import_module(m)
print(len(mods), "streamlit" in sys.modules)
"""


def _layer(path: Path) -> str:
    rel = path.relative_to(CORE).parts
    return rel[0] if len(rel) > 1 else "errors" if path.name == "errors.py" else "cli"


def _core_imports(path: Path) -> set[str]:
    """Layers of core that ``path`` imports, at the top or inside a function (lazy imports count)."""
    package = ["core", *path.relative_to(CORE).parts[:-1]]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = [*base, *(node.module.split(".") if node.module else [])]
                names = [".".join(mod)] if node.module else [".".join([*mod, a.name]) for a in node.names]
            elif node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "core" and len(parts) > 1:
                found.add(parts[1] if (CORE / parts[1]).is_dir() or parts[1] == "errors" else "cli")
    return found


def test_layers_import_only_what_they_may():
    files = sorted(CORE.rglob("*.py"))
    assert {_layer(f) for f in files} == set(ALLOWED), "a new layer needs its rule here and in the README"
    wrong = []
    for f in files:
        layer = _layer(f)
        extra = _core_imports(f) - ALLOWED[layer] - {layer}
        if extra:
            wrong.append(f"{f.relative_to(ROOT)} ({layer}) imports {sorted(extra)}")
    assert not wrong, "\n".join(wrong)


def test_every_layer_says_what_it_owns_and_may_import():
    for pkg in ALLOWED:
        if pkg in ("cli", "errors"):
            continue
        init = CORE / pkg / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and "May import" in doc, init


MAX_LINES = 400  # the house's limit for a module of core and of pages (issue 26.7)


def test_no_module_of_core_or_pages_is_over_400_lines():
    files = [*CORE.rglob("*.py"), *(ROOT / "pages").glob("*.py"), ROOT / "app.py"]
    long = {str(f.relative_to(ROOT)): n for f in files if (n := len(f.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by concern): {long}"


def test_no_core_module_imports_streamlit():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    n, streamlit = out.stdout.strip().splitlines()[-1].split()
    assert int(n) > 25 and streamlit == "False"


def test_importing_core_and_data_layer_is_light():
    code = (
        "import sys, core, core.data.io, core.store.workspace, core.workflow.ingest, core.workflow.export, "
        "core.cli; print('torch' in sys.modules, 'streamlit' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.stdout.strip() == "False False", out.stderr


def test_review_and_view_import_neither_torch_nor_monai():
    code = (
        "import sys, core.workflow.review, core.workflow.predictions_view, core.workflow.guide, "
        "core.workflow.assist, core.view.plots, core.view.canvas; print('torch' in sys.modules, 'monai' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.stdout.strip() == "False False", out.stderr


# -- no import loops inside core (issue 26) -------------------------------------------------------


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_imports(path: Path, modules: set[str]) -> set[str]:
    """The modules of core that ``path`` imports, at the top, inside a function or under
    ``TYPE_CHECKING`` alike: ``from .x import y`` counts as importing ``x.y`` when that is a module."""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            mod = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.update(f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod for a in node.names)
    return {m for m in found if m in modules} - {_module_name(path)}


def _import_loops(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan), each an import loop."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    loops: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                loops.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return loops


def test_import_loop_finder_sees_a_loop_through_a_function_level_import():
    graph = {"core.a": {"core.b"}, "core.b": {"core.c"}, "core.c": {"core.a"}, "core.d": {"core.a"}}
    assert _import_loops(graph) == [{"core.a", "core.b", "core.c"}]
    assert _import_loops({"core.a": {"core.b"}, "core.b": set()}) == []
    assert _module_imports(CORE / "data" / "io.py", {"core.data.chunked"}) == {"core.data.chunked"}  # lazy


def test_no_import_loops_inside_core():
    files = sorted(CORE.rglob("*.py"))
    modules = {_module_name(f) for f in files}
    graph = {_module_name(f): _module_imports(f, modules) for f in files}
    loops = [sorted(loop) for loop in _import_loops(graph)]
    assert not loops, "import loops inside core (move the shared piece to a lower module):\n" + "\n".join(
        " <-> ".join(loop) for loop in loops
    )


# -- the store owns the catalog and all SQL (issue 26) ------------------------------------------------

STORE = CORE / "store"
# the catalog modules: the only ones that hold SQL
CATALOG_MODULES = {"catalog.py", "catalog_db.py", "mask_rows.py", "run_rows.py", "recovered_rows.py", "schema.py"}
SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE TABLE|ALTER TABLE|PRAGMA)\b[^\n]*\b(FROM|INTO|SET|TABLE|\w+=)|"
                 r"\bDELETE FROM\b|\.execute(many|script)?\(")  # fmt: skip


def _code_strings_and_calls(path: Path) -> list[tuple[int, str]]:
    """``(line, text)`` of every string constant and every ``.execute*(`` call in ``path``'s code
    (docstrings and comments are words about SQL, not SQL: a string that is a docstring is skipped)."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(n.body[0].value)
        for n in ast.walk(tree)
        if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and n.body
        and isinstance(n.body[0], ast.Expr)
        and isinstance(n.body[0].value, ast.Constant)
    }
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            out.append((node.lineno, node.value))
        elif isinstance(node, ast.Attribute) and node.attr in ("execute", "executemany", "executescript"):
            out.append((node.lineno, f".{node.attr}("))
    return out


def test_sql_is_only_in_the_catalog_modules():
    found = []
    for f in sorted(CORE.rglob("*.py")):
        if f.parent == STORE and f.name in CATALOG_MODULES:
            continue
        for line, text in _code_strings_and_calls(f):
            if SQL.search(text):
                found.append(f"{f.relative_to(ROOT)}:{line}: {text[:80]!r}")
    assert not found, "SQL outside core/store's catalog modules:\n" + "\n".join(found)


def test_sql_finder_sees_sql_in_code_and_not_in_words(tmp_path):
    code = tmp_path / "m.py"
    code.write_text(
        '"""Rows are read with SELECT * FROM runs."""\n'
        "def f(con):\n"
        '    """UPDATE runs SET state here."""\n'
        "    return con.query('SELECT version FROM slices WHERE z=?')\n"
        "def g(con):\n"
        "    con.execute(q)\n"
    )
    hits = [line for line, text in _code_strings_and_calls(code) if SQL.search(text)]
    assert hits == [4, 6]


def test_no_code_outside_the_store_reaches_the_catalog():
    """Pages, workflow, commands, training and prediction call named methods of the Workspace; only
    core/store holds the catalog. ``self.catalog`` is a Workspace's own (a subclass of it)."""
    found = []
    files = [*sorted(CORE.rglob("*.py")), *sorted((ROOT / "pages").glob("*.py")), ROOT / "app.py"]
    for f in files:
        if f.is_relative_to(STORE):
            continue
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "catalog":
                if not (isinstance(node.value, ast.Name) and node.value.id == "self"):
                    found.append(f"{f.relative_to(ROOT)}:{node.lineno}")
    assert not found, "the catalog used outside core/store (call a Workspace method):\n" + "\n".join(found)


def test_store_modules_use_no_private_name_of_another_module_and_no_mixins():
    """Inside core/store, no ``from .x import _y`` and no ``obj._y`` of another object but ``self``'s;
    no class of the store inherits from another store class (composed, not mixed in)."""
    store_classes = set()
    trees = {f: ast.parse(f.read_text()) for f in sorted(STORE.glob("*.py"))}
    for tree in trees.values():
        store_classes |= {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    wrong = []
    for f, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                wrong += [f"{f.name}: imports {a.name}" for a in node.names if a.name.startswith("_")]
            elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                    wrong.append(f"{f.name}:{node.lineno}: .{node.attr}")
            elif isinstance(node, ast.ClassDef):
                bases = {b.id for b in node.bases if isinstance(b, ast.Name)}
                if bases & (store_classes - {"WorkspaceError", "SegDashError"}):
                    wrong.append(f"{f.name}: class {node.name}({', '.join(sorted(bases))})")
    assert not wrong, "\n".join(wrong)
