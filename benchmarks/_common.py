"""Shared bits of the benchmark scripts: machine description, result table and JSON output."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))


# Source for a child process: its own peak RSS in MB. VmHWM, because ru_maxrss of a child can
# carry its parent's high-water mark across fork.
PEAK = r"""
def peak_rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
"""


def arm_args(doc: str, epochs: int) -> argparse.Namespace:
    """The options of the side-by-side trainer comparisons (``bench_trainer``, ``bench_gpu``)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="runs of each arm, alternating (default 3)")
    ap.add_argument("--epochs", type=int, default=epochs, help=f"epochs per run (default {epochs})")
    ap.add_argument("--set", default="{}", help="JSON overrides of the recipe")
    return ap.parse_args()


def machine() -> dict:
    info = {
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return info


def report(name: str, rows: list[dict], extra: dict | None = None) -> dict:
    """Print ``rows`` as a table and write ``benchmarks/results/<name>.json``; returns the record."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    widths = {k: max(len(k), *(len(_fmt(r.get(k))) for r in rows)) for k in keys}
    print(" | ".join(k.ljust(widths[k]) for k in keys))
    print("-+-".join("-" * widths[k] for k in keys))
    for r in rows:
        print(" | ".join(_fmt(r.get(k)).ljust(widths[k]) for k in keys))
    record = {"benchmark": name, "machine": machine(), "rows": rows, **(extra or {})}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(record, indent=1, default=str))
    print(json.dumps(record, default=str))
    return record


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)
