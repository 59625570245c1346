"""Scale beyond one process: (a) peak RSS of predicting a Zarr volume chunk by chunk as it gets deeper,
(b) DDP training on the CPU, 2 processes (torchrun, gloo) against 1, (c) a GPU row when CUDA is there,
(d) peak RSS of training on a dataset that references a Zarr volume as it gets deeper.

(a) ``python -m core predict --input VOL.zarr --out OUT.zarr`` in a child process (its own ``VmHWM``)
on synthetic uint8 volumes of 100 and 400 slices of 1024 x 1024 (chunks 8 x 512 x 512), with a tiny
network (classic U-Net width 4, untrained: memory and speed do not depend on the weights' values).
Target: the peak does not grow with the depth (< 50 MB between 100 and 400 slices), < 1.5 GB.

(b) ``python -m core train`` on a synthetic dataset (discs, 16 slices of 256 x 256) with the same
config (classic U-Net width 8, 128 px patches, global batch 8) in one process using every core, and
under ``torchrun --nproc_per_node=2`` (one thread each, as ``core.nn.distributed.init`` sets them);
images/s is the epoch row's (optimisation steps only), alternating the arms for ``--rounds`` rounds.

(d) ``python -m core train`` in a child process (its own ``VmHWM``, one thread) on a dataset imported
with ``--by-reference`` from the same synthetic volumes as (a), 4 slices labeled (evenly spaced), with
a tiny network (classic U-Net width 4, 256 px patches, batch 2, 5 steps). Target: the peak does not
grow with the depth (< 50 MB between 100 and 400 slices): training reads the labeled slices and a few
sampled ones, never the volume.

Usage: python benchmarks/bench_scale.py [--depths 100 400] [--rounds 2] [--steps 30] [--skip-ddp]
       [--skip-memory] [--skip-reference] [--quick]   (--quick: a smoke test at small sizes)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import PEAK, ROOT, report

SIDE = 1024
CHUNKS = (8, 512, 512)
TARGET_GROWTH_MB = 50.0
TARGET_PEAK_MB = 1536.0

CHILD = (
    PEAK
    + r"""
import json, sys
from core.cli import main
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "peak_rss_mb": peak_rss_mb()}))
"""
)

DDP_CONFIG = {
    "model": {"arch": "classic", "classic_width": 8},
    "patch_size": 128,
    "batch_size": 8,
    "epochs": 1,
    "val_fraction": 0.125,
    "val_crop": 128,
    "device": "cpu",
}


def _child(what: str, *args: str) -> list[str]:
    """``python -m core ARGS`` through :data:`CHILD` in a child process of one thread (the fastest on a
    busy shared machine; RSS does not depend on it); its standard output's lines."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "SEGDASH_THREADS": "1"},
    )
    if out.returncode:
        raise SystemExit(f"{what} child failed:\n{out.stderr[-3000:]}")
    return out.stdout.strip().splitlines()


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _volume(path: Path, depth: int, side: int = SIDE) -> None:
    import zarr

    chunks = (CHUNKS[0], min(side, CHUNKS[1]), min(side, CHUNKS[2]))
    arr = zarr.create_array(str(path), shape=(depth, side, side), chunks=chunks, dtype="uint8")
    rng = np.random.default_rng(0)
    for z0 in range(0, depth, CHUNKS[0]):
        n = min(CHUNKS[0], depth - z0)
        arr[z0 : z0 + n] = rng.integers(0, 256, (n, side, side), dtype=np.uint8)


def _growth(rows: list[dict], what: str) -> dict:
    """The row comparing the peak RSS of the last row with the first's (``what`` takes their slices)."""
    growth = rows[-1]["peak_rss_mb"] - rows[0]["peak_rss_mb"]
    return {
        "what": what.format(rows[0]["slices"], rows[-1]["slices"]),
        "peak_rss_mb": round(growth, 1),
        "target": f"< {TARGET_GROWTH_MB:.0f} MB",
        "met": growth < TARGET_GROWTH_MB,
    }


def memory_part(tmp: Path, depths: list[int], side: int = SIDE) -> list[dict]:
    from tests.synthetic import tiny_checkpoint  # the test suite's untrained classic U-Net, here of width 4

    ckpt = tiny_checkpoint(tmp / "tiny.pt", width=4, patch_size=256)
    rows = []
    for depth in depths:
        src = tmp / f"vol{depth}.zarr"
        log(f"writing a {depth}x{side}x{side} Zarr ...")
        _volume(src, depth, side)
        log("predicting it chunk by chunk in a child process ...")
        t0 = time.perf_counter()
        out_zarr = str(tmp / f"out{depth}.zarr")
        lines = _child("prediction", "predict", "--checkpoint", str(ckpt), "--input", str(src), "--out", out_zarr)
        summary, res = json.loads(lines[-2]), json.loads(lines[-1])
        rows.append(
            {
                "what": f"predict {depth}x{side}x{side} Zarr -> Zarr (child process)",
                "slices": depth,
                "seconds": round(time.perf_counter() - t0, 1),
                "slices_per_s": round(depth / summary["seconds"], 2),
                "peak_rss_mb": round(res["peak_rss_mb"], 1),
                "target": f"< {TARGET_PEAK_MB:.0f} MB",
                "met": res["peak_rss_mb"] < TARGET_PEAK_MB,
            }
        )
        shutil.rmtree(src, ignore_errors=True)
        shutil.rmtree(tmp / f"out{depth}.zarr", ignore_errors=True)
    if len(rows) >= 2:
        rows.append(_growth(rows, "peak RSS growth, {} -> {} slices"))
    return rows


REF_CONFIG = {  # (d): a few steps of a tiny network; memory is the volume's part, not the model's
    "model": {"arch": "classic", "classic_width": 4},
    "patch_size": 256,
    "batch_size": 2,
    "steps_per_epoch": 5,
    "epochs": 1,
    "device": "cpu",
}
REF_LABELED = 4


def reference_part(tmp: Path, depths: list[int], side: int = SIDE) -> list[dict]:
    """(d) Peak RSS of ``python -m core train`` (child process) on a dataset that references a
    synthetic Zarr volume of each depth (imported with ``--by-reference``), 4 slices labeled."""
    from core.store.workspace import Workspace
    from core.workflow.ingest import import_dataset

    cfg_file = tmp / "ref_cfg.json"
    cfg_file.write_text(json.dumps(REF_CONFIG))
    rows = []
    for depth in depths:
        src, ws_root = tmp / f"ref{depth}.zarr", tmp / f"ws_ref{depth}"
        log(f"writing a {depth}x{side}x{side} Zarr and importing it by reference ...")
        _volume(src, depth, side)
        ws = Workspace(ws_root)
        import_dataset(ws, "ref", str(src), by_reference=True)
        vol = ws.read_images("ref")
        for z in np.linspace(0, depth - 1, REF_LABELED).round().astype(int):
            ws.save_mask("ref", int(z), (vol[int(z)] > 127).astype(np.uint8))
        log("training on it in a child process ...")
        t0 = time.perf_counter()
        lines = _child("training", "train", "--workspace", str(ws_root), "--dataset", "ref", "--config", str(cfg_file))
        res = json.loads(lines[-1])
        rows.append(
            {
                "what": f"train on a dataset referencing a {depth}x{side}x{side} Zarr, {REF_LABELED} labeled (child)",
                "slices": depth,
                "seconds": round(time.perf_counter() - t0, 1),
                "peak_rss_mb": round(res["peak_rss_mb"], 1),
            }
        )
        shutil.rmtree(src, ignore_errors=True)
        shutil.rmtree(ws_root, ignore_errors=True)
    if len(rows) >= 2:
        rows.append(_growth(rows, "(d) peak RSS growth, {} -> {} referenced slices"))
    return rows


def _train(ws: Path, cfg_file: Path, procs: int, threads: int) -> float:
    """images/s of one epoch of ``python -m core train`` in ``procs`` processes of ``threads`` threads
    (rank 0's row)."""
    from core.store.workspace import Workspace

    env = {**os.environ, "SEGDASH_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    core = ["-m", "core", "train", "--workspace", str(ws), "--dataset", "discs", "--config", str(cfg_file)]
    if procs == 1:
        cmd = [sys.executable, *core]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}", *core]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    if out.returncode:
        raise SystemExit(f"training ({procs} processes) failed:\n{out.stderr[-3000:]}")
    run_id = json.loads([ln for ln in out.stdout.splitlines() if ln.startswith("{")][-1])["run_id"]
    return float(Workspace(ws).run_epochs(run_id)[-1]["images_per_s"])


def ddp_part(tmp: Path, rounds: int, steps: int) -> tuple[list[dict], dict]:
    from core.store.workspace import Workspace
    from tests.synthetic import discs

    rng = np.random.default_rng(0)
    pairs = [discs(rng, 256, 256, 12) for _ in range(16)]
    ws = tmp / "ws"
    Workspace(ws).create_dataset(
        "discs", np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]), ["background", "disc"]
    )
    cfg_file = tmp / "cfg.json"
    cfg_file.write_text(json.dumps({**DDP_CONFIG, "steps_per_epoch": steps}))
    cores = os.cpu_count() or 1
    arms = {"1x1": (1, 1), f"1x{cores}": (1, cores), "2x1": (2, 1)}  # processes x threads each
    speeds: dict[str, list[float]] = {k: [] for k in arms}
    for r in range(rounds):
        for name in list(arms) if r % 2 == 0 else list(arms)[::-1]:
            log(f"round {r + 1}: training, {name} (processes x threads) ...")
            speeds[name].append(round(_train(ws, cfg_file, *arms[name]), 3))
    med = {k: statistics.median(v) for k, v in speeds.items()}
    rows = [
        {"what": "train, 1 process, 1 thread", "images_per_s": round(med["1x1"], 2), "per_round": speeds["1x1"]},
        {
            "what": f"train, 1 process, {cores} threads",
            "images_per_s": round(med[f"1x{cores}"], 2),
            "per_round": speeds[f"1x{cores}"],
        },
        {
            "what": "train, torchrun 2 processes (gloo), 1 thread each",
            "images_per_s": round(med["2x1"], 2),
            "per_round": speeds["2x1"],
        },
        {"what": "scaling: 2 processes / 1 process of 1 thread", "ratio": round(med["2x1"] / med["1x1"], 3)},
        {"what": f"2 processes / 1 process of {cores} threads", "ratio": round(med["2x1"] / med[f"1x{cores}"], 3)},
    ]
    return rows, {"ddp_config": {**DDP_CONFIG, "steps_per_epoch": steps}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depths", type=int, nargs="+", default=[100, 400], help="volume depths (default 100 400)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating DDP rounds (default 2)")
    ap.add_argument("--steps", type=int, default=30, help="optimisation steps of the DDP epoch (default 30)")
    ap.add_argument("--skip-ddp", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--skip-reference", action="store_true", help="skip (d), training on a referenced Zarr")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: volumes of 8 and 24 slices of 128 x 128, 1 DDP round of 3 steps (scale_quick.json)",
    )
    ap.add_argument("--dir", default=None, help="where to write the temporary files")
    args = ap.parse_args()
    side = SIDE
    if args.quick:
        side, args.depths, args.rounds, args.steps = 128, [8, 24], 1, 3
    tmp = Path(tempfile.mkdtemp(prefix="segdash-bench-scale-", dir=args.dir))
    load = os.getloadavg()[0]
    rows, extra = [], {}
    try:
        if not args.skip_ddp:
            ddp_rows, extra = ddp_part(tmp, args.rounds, args.steps)
            rows += ddp_rows
        if not args.skip_memory:
            rows += memory_part(tmp, args.depths, side)
        if not args.skip_reference:
            rows += reference_part(tmp, args.depths, side)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    gpu = {"what": "GPU", "note": "not measured: no CUDA device here (see benchmarks/README.md for the plan)"}
    try:
        import torch

        if torch.cuda.is_available():
            gpu["note"] = "CUDA present: run benchmarks/bench_gpu.py, then torchrun --nproc_per_node=<GPUs> as in (b)"
    except ImportError:
        pass
    rows.append(gpu)
    report(
        "scale_quick" if args.quick else "scale",
        rows,
        {
            **extra,
            "memory_model": "classic U-Net width 4 (untrained)",
            "volume_chunks": list(CHUNKS),
            "reference_config": REF_CONFIG,
            "load_avg_before": load,
            "load_avg_after": os.getloadavg()[0],
        },
    )


if __name__ == "__main__":
    main()
