"""Data layer: time and peak memory to open a 2 GB uncompressed multipage TIFF and read one slice.

Target: under 1 s and under 200 MB peak RSS. The stack is written once to a temporary folder
(``--dir``, default the system temp), then a fresh subprocess opens it with ``core.data.io.read_stack``
and reads the middle slice, so the numbers are the user's first open, not a warm Python.

    python benchmarks/bench_data.py [--gb 2] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import PEAK, ROOT, report

CHILD = (
    PEAK
    + r"""
import json, sys, time
t0 = time.perf_counter()
from core.data.io import read_stack
t1 = time.perf_counter()
stack = read_stack(sys.argv[1])
z = stack.shape[0] // 2
sl = stack.data[z].copy()
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "open_and_read_s": t2 - t1, "shape": list(stack.shape),
                  "mmap": type(stack.data).__name__ == "memmap", "slice_mean": float(sl.mean()),
                  "peak_rss_mb": peak_rss_mb()}))
"""
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gb", type=float, default=2.0, help="stack size in GB (default 2)")
    ap.add_argument("--dir", default=None, help="where to write the temporary stack")
    args = ap.parse_args()
    import numpy as np
    import tifffile

    z = max(1, int(args.gb * 1024**3 / (2048 * 2048 * 2)))
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "stack.tif"
        t = time.perf_counter()
        arr = tifffile.memmap(path, shape=(z, 2048, 2048), dtype=np.uint16, photometric="minisblack")
        for i in range(z):
            arr[i] = i
        arr.flush()
        del arr
        write_s = time.perf_counter() - t
        base = subprocess.run(
            [sys.executable, "-c", PEAK + "import numpy, tifffile, PIL.Image; print(peak_rss_mb())"],
            capture_output=True,
            text=True,
            check=True,
        )
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, cwd=ROOT, check=True
        )
        res = json.loads(out.stdout.strip().splitlines()[-1])
    size_gb = path_size = z * 2048 * 2048 * 2 / 1024**3
    rows = [
        {
            "what": "open + read middle slice",
            "stack": f"{z}x2048x2048 uint16 ({size_gb:.2f} GiB)",
            "seconds": res["open_and_read_s"],
            "peak_rss_mb": res["peak_rss_mb"],
            "python+numpy+tifffile_rss_mb": float(base.stdout.strip()),
            "memory_mapped": res["mmap"],
            "target": "< 1 s, < 200 MB",
            "met": res["open_and_read_s"] < 1 and res["peak_rss_mb"] < 200,
        }
    ]
    report("data", rows, {"write_stack_s": write_s, "size_gib": path_size})


if __name__ == "__main__":
    main()
