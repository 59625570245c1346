"""Package-level promises: core stays free of streamlit (and light to import)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CODE = """
import sys, importlib, pkgutil
import core
mods = [m.name for m in pkgutil.iter_modules(core.__path__) if m.name != "__main__"]
for m in mods:
    importlib.import_module("core." + m)
print("streamlit" in sys.modules)
"""


def test_no_core_module_imports_streamlit():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_importing_core_and_data_layer_is_light():
    code = "import sys, core, core.io, core.workspace, core.ingest, core.export, core.cli; " \
           "print('torch' in sys.modules, 'streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.stdout.strip() == "False False", out.stderr
