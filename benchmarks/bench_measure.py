"""Measuring objects: time and peak RSS to measure the EPFL mitochondria training masks (165 x 768 x 1024).

Each mode runs in a child process of its own (its own ``VmHWM``): the masks ({0, 255} PNGs, to class
indices) and the raw images are read into memory first (``load`` columns), then
``core.measure.tables.measure_masks`` finds the objects and measures them with intensities on the
raw images (``measure_s`` wall clock, ``measure_cpu_s`` the CPU time it used: on a shared machine
the wall clock is several times the CPU time), then the objects are written as CSV. ``2d``: objects per slice;
``3d``: through the stack (26-connected, marching-cubes surface, solidity). ``--split`` adds the
watershed split. Threads: what numpy/scipy/scikit-image use by themselves (single-threaded
labeling and regionprops). Target: under 30 s and under 1.5 GB on 2 cores.

    python benchmarks/bench_measure.py [--modes 2d 3d] [--slices 165] [--split]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _common import PEAK, ROOT, report

DATA = ROOT.parent / "shared" / "data" / "epfl-mito-train"
if not DATA.is_dir():
    DATA = ROOT / ".." / ".." / "shared" / "data" / "epfl-mito-train"

CHILD = (
    PEAK
    + r"""
import json, sys, time, tempfile, os, resource
import numpy as np
from pathlib import Path
from PIL import Image
sys.path.insert(0, {root!r})
from core.measure.tables import measure_masks, write_table
from core.data.pixelsize import PixelSize

data, mode, n, split = Path({data!r}), {mode!r}, {n}, {split}
t0 = time.perf_counter()
names = sorted(p.name for p in (data / "masks").glob("*.png"))[:n]
masks = np.stack([(np.array(Image.open(data / "masks" / f)) > 127).astype(np.uint8) for f in names])
images = np.stack([np.array(Image.open(data / "images" / f).convert("L")) for f in names])
load_s, load_mb = time.perf_counter() - t0, peak_rss_mb()
t1, c1 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
r = measure_masks(masks, images, ["background", "mitochondrion"], mode=mode, split=split,
                  pixel_size=PixelSize(0.005, 0.005, 0.005, "micrometer"))
measure_s, c2 = time.perf_counter() - t1, resource.getrusage(resource.RUSAGE_SELF)
cpu_s = (c2.ru_utime + c2.ru_stime) - (c1.ru_utime + c1.ru_stime)
t2 = time.perf_counter()
out = Path(tempfile.mkdtemp()) / "objects.csv"
write_table(r, out)
csv_s = time.perf_counter() - t2
os.remove(out)
print(json.dumps({{"load_s": load_s, "load_peak_mb": load_mb, "measure_s": measure_s, "cpu_s": cpu_s, "csv_s": csv_s,
                  "peak_mb": peak_rss_mb(), "objects": len(r.objects), "border": int(r.objects["border"].sum()),
                  "shape": list(masks.shape), "area_fraction": float(r.dataset["area_fraction"].iloc[0])}}))
"""
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", nargs="+", default=["2d", "3d"])
    ap.add_argument("--slices", type=int, default=165)
    ap.add_argument("--split", action="store_true", help="also split touching objects (watershed)")
    args = ap.parse_args()
    if not (DATA / "masks").is_dir():
        sys.exit(f"no EPFL data at {DATA}")
    rows = []
    for mode in args.modes:
        before = os.getloadavg()[0]
        code = CHILD.format(root=str(ROOT), data=str(DATA), mode=mode, n=args.slices, split=args.split)
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800)
        if out.returncode:
            sys.exit(out.stderr[-2000:])
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(
            {
                "mode": mode + (" split" if args.split else ""),
                "shape": "x".join(map(str, r["shape"])),
                "objects": r["objects"],
                "border": r["border"],
                "measure_s": round(r["measure_s"], 2),
                "measure_cpu_s": round(r["cpu_s"], 2),
                "csv_s": round(r["csv_s"], 2),
                "load_s": round(r["load_s"], 2),
                "peak_rss_mb": round(r["peak_mb"]),
                "rss_after_load_mb": round(r["load_peak_mb"]),
                "child_s": round(time.perf_counter() - t, 1),
                "load_avg_before": round(before, 2),
                "load_avg_after": round(os.getloadavg()[0], 2),
            }
        )
    report(
        "measure" + ("_split" if args.split else ""),
        rows,
        {"target": "measure_s < 30, peak_rss_mb < 1500 (2 cores)", "data": str(DATA)},
    )


if __name__ == "__main__":
    main()
