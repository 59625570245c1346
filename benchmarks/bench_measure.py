"""Measuring objects: time and peak RSS to measure the EPFL mitochondria training masks (165 x 768 x 1024).

Each mode runs in a child process of its own (its own ``VmHWM``): the masks ({0, 255} PNGs, to class
indices) and the raw images are read into memory first (``load`` columns), then
``core.measure.tables.measure_masks`` finds the objects and measures them with intensities on the
raw images (``measure_s`` wall clock, ``measure_cpu_s`` the CPU time it used: on a shared machine
the wall clock is several times the CPU time), then the objects are written as CSV. ``2d``: objects per slice;
``3d``: through the stack (26-connected, marching-cubes surface, solidity). ``--split`` adds the
watershed split. Threads: what numpy/scipy/scikit-image use by themselves (single-threaded
labeling and regionprops). Target: under 30 s and under 1.5 GB on 2 cores.

``--zarr-depths 100 400``: synthetic Zarr masks of that many 1024 x 1024 slices (chunks 8 x 512 x 512,
20 discs a slice) measured in 2D without a label image (``keep_labels=False``, what
``python -m core measure`` does without ``--labels-out``), a slice at a time: the child's peak RSS
must not grow with the depth.

    python benchmarks/bench_measure.py [--modes 2d 3d] [--slices 165] [--split] [--zarr-depths 100 400]
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

ZARR_CHILD = (
    PEAK
    + r"""
import json, sys, time, resource
sys.path.insert(0, {root!r})
from core.data.chunked import open_volume
from core.measure.tables import measure_masks

vol = open_volume({path!r})
t, c1 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
r = measure_masks(vol, None, ["background", "disc"], keep_labels=False)
c2 = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"measure_s": time.perf_counter() - t, "objects": len(r.objects), "peak_mb": peak_rss_mb(),
                  "cpu_s": (c2.ru_utime + c2.ru_stime) - (c1.ru_utime + c1.ru_stime)}}))
"""
)


def _zarr_rows(depths: list[int]) -> list[dict]:
    import tempfile

    import numpy as np

    from core.data.chunked import create_volume

    rows = []
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:1024, :1024]
    pattern = np.zeros((1024, 1024), np.uint8)
    for _ in range(20):
        cy, cx, r = rng.uniform(40, 984), rng.uniform(40, 984), rng.uniform(8, 20)
        pattern[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 1
    with tempfile.TemporaryDirectory() as tmp:
        for depth in depths:
            path = f"{tmp}/masks_{depth}.zarr"
            arr = create_volume(path, (depth, 1024, 1024), np.uint8, (8, 512, 512))
            for z0 in range(0, depth, 8):
                block = np.roll(pattern, 16 * (z0 // 8), axis=1)
                arr[z0 : z0 + 8] = np.broadcast_to(block, (min(8, depth - z0), 1024, 1024))
            before = os.getloadavg()[0]
            code = ZARR_CHILD.format(root=str(ROOT), path=path)
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=3600)
            if out.returncode:
                sys.exit(out.stderr[-2000:])
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(
                {
                    "mode": "2d zarr, no label image",
                    "shape": f"{depth}x1024x1024",
                    "objects": r["objects"],
                    "measure_s": round(r["measure_s"], 1),
                    "measure_cpu_s": round(r["cpu_s"], 1),
                    "peak_rss_mb": round(r["peak_mb"]),
                    "load_avg_before": round(before, 2),
                    "load_avg_after": round(os.getloadavg()[0], 2),
                }
            )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", nargs="*", default=["2d", "3d"], help="EPFL stack modes (none: skip it)")
    ap.add_argument("--slices", type=int, default=165)
    ap.add_argument("--split", action="store_true", help="also split touching objects (watershed)")
    ap.add_argument("--zarr-depths", type=int, nargs="*", default=[], help="also Zarr masks of these depths")
    args = ap.parse_args()
    if not (DATA / "masks").is_dir():
        sys.exit(f"no EPFL data at {DATA}")
    rows = []
    if args.zarr_depths:
        rows += _zarr_rows(args.zarr_depths)
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
        "measure" + ("_split" if args.split else "") + ("_zarr" if args.zarr_depths and not args.modes else ""),
        rows,
        {"target": "measure_s < 30, peak_rss_mb < 1500 (2 cores)", "data": str(DATA)},
    )


if __name__ == "__main__":
    main()
