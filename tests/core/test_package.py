"""Package-level promises: the layers import only what they may, core stays free of streamlit
(and light to import)."""

import ast
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
