"""OME-Zarr export of a large dataset (issue 28.1): time and peak RSS of ``python -m core export --format
ome-zarr`` on a synthetic dataset of 150 slices of 2048 x 2048 (uint8, 629 MB; 30 slices labeled, 10 of
them partly), then the time to read one slice back (the image's full-resolution level and the masks)
and the time of importing it back (``import --images X.zarr --masks X.zarr/labels/masks``).

Each step runs in a child process (its own ``VmHWM``). Target: peak RSS of the export under 1 GB.
Before issue 28.1 the export chunked every level over the whole depth ((150, 945, 945) at s0): 100 s,
6.2 GB peak, 3.6 s to read one slice back (as the issue measured).

Usage: python benchmarks/bench_omezarr.py [--slices 150] [--side 2048] [--quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import PEAK, ROOT, report

TARGET_PEAK_MB = 1024.0

SETUP = r"""
import sys
import numpy as np
import tifffile
from core.store.workspace import Workspace
ws_root, z, side = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
tmp = ws_root + ".images.tif"
images = tifffile.memmap(tmp, shape=(z, side, side), dtype=np.uint8, photometric="minisblack")
rng = np.random.default_rng(0)
yy, xx = np.mgrid[:side, :side]
masks = []
for i in range(z):
    cx, cy = rng.integers(0, side, 2)
    disc = ((yy - cy) ** 2 + (xx - cx) ** 2) < (side // 5) ** 2
    images[i] = (disc * 120 + rng.integers(0, 100, (side, side))).astype(np.uint8)
    if i % 5 == 0 and len(masks) < z:
        m = disc.astype(np.uint8)
        if i % 15 == 0:
            m[:, : side // 3] = 255  # partly labeled
        masks.append(m)
    else:
        masks.append(None)
images.flush()
ws = Workspace(ws_root)
ws.create_dataset("big", images, masks, class_names=["background", "cell"])
ws.set_pixel_size("big", 1.0, 0.5, 0.5, "micrometer")
print(sum(m is not None for m in masks))
"""

CHILD = (
    PEAK
    + r"""
import json, sys, time
from core.cli import main
t0 = time.perf_counter()
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "seconds": time.perf_counter() - t0, "peak_rss_mb": peak_rss_mb()}))
"""
)

READ_ONE = (
    PEAK
    + r"""
import json, sys, time
import zarr
t0 = time.perf_counter()
image = zarr.open_array(sys.argv[1] + "/s0", mode="r")[int(sys.argv[2])]
t1 = time.perf_counter()
masks = zarr.open_array(sys.argv[1] + "/labels/masks/s0", mode="r")[int(sys.argv[2])]
t2 = time.perf_counter()
chunks = zarr.open_array(sys.argv[1] + "/s0", mode="r").chunks
print(json.dumps({"image_s": t1 - t0, "masks_s": t2 - t1, "chunks": list(chunks), "peak_rss_mb": peak_rss_mb()}))
"""
)


def _child(code: str, *args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, env=_env(), timeout=3600
    )
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _env() -> dict:
    import os

    return {**os.environ, "PYTHONPATH": str(ROOT)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=150)
    ap.add_argument("--side", type=int, default=2048)
    ap.add_argument("--quick", action="store_true", help="a smoke test: 12 slices of 512 x 512")
    args = ap.parse_args()
    z, side = (12, 512) if args.quick else (args.slices, args.side)
    tmp = Path(tempfile.mkdtemp(prefix="bench-omezarr-"))
    try:
        ws = tmp / "ws"
        t0 = time.perf_counter()
        labeled = int(
            subprocess.run(
                [sys.executable, "-c", SETUP, str(ws), str(z), str(side)],
                cwd=ROOT,
                env=_env(),
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()[-1]
        )
        setup_s = time.perf_counter() - t0
        out = tmp / "big.zarr"
        export = _child(
            CHILD, "export", "--workspace", str(ws), "--dataset", "big", "--format", "ome-zarr", "--out", str(out)
        )
        read = _child(READ_ONE, str(out), str(z // 2))
        back = _child(
            CHILD,
            "import",
            "--workspace",
            str(ws),
            "--name",
            "back",
            "--images",
            str(out),
            "--masks",
            str(out / "labels" / "masks"),
        )
        listing = subprocess.run(
            [sys.executable, "-m", "core", "list", "--workspace", str(ws)], cwd=ROOT, env=_env(), capture_output=True
        )
        datasets = {d["name"]: d for d in json.loads(listing.stdout.decode().strip().splitlines()[-1])["datasets"]}
        size_mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
        row = {
            "shape": f"{z}x{side}x{side}",
            "labeled": labeled,
            "export_s": round(export["seconds"], 1),
            "export_peak_rss_mb": round(export["peak_rss_mb"]),
            "target_mb": TARGET_PEAK_MB,
            "zarr_mb": round(size_mb),
            "s0_chunks": "x".join(map(str, read["chunks"])),
            "read_slice_image_s": round(read["image_s"], 3),
            "read_slice_masks_s": round(read["masks_s"], 3),
            "import_back_s": round(back["seconds"], 1),
            "import_back_peak_rss_mb": round(back["peak_rss_mb"]),
            "labeled_back": datasets.get("back", {}).get("labeled"),
        }
        report("omezarr" + ("_quick" if args.quick else ""), [row], {"setup_s": round(setup_s, 1)})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
