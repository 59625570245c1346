"""Inference: cost of tiled prediction against the bare forward pass, and peak memory on a big stack.

1. **Ratio.** The recipe's network (:func:`core.train.config.default_config`, random weights: only
   time matters) saved as a checkpoint with the recipe's patch size, so prediction uses the
   default tiling of :mod:`core.predict` (:func:`~core.predict.inferer.default_tile`: the patch size
   but at least 1024, the fewest tiles spread over the slice, overlap 0.25, Gaussian blending).
   On ``--slices`` ISBI 2012 slices (512 x 512 uint8) and on 2 random 768 x 1024 slices (EPFL
   size), three ways, alternating for ``--rounds`` rounds (median):

   - **bare**: normalise, ``model(x)`` of one whole slice at a time and a sigmoid under
     ``torch.inference_mode``, channels-last as in prediction: the least work that gives the
     same probabilities (batches of 4 slices were slower per slice on a CPU);
   - **predict_slice**: :func:`core.predict.inferer.predict_slice` per slice (default ``PredictConfig``);
   - **predict_stack**: :func:`core.predict.stack.predict_stack` of the same slices to TIFF files
     (masks + probabilities, per-slice uncertainty): what the app and the CLI run.

   Ratio = seconds / bare seconds. Target: predict_slice <= 1.3 x bare at the default overlap,
   on both sizes.

2. **Peak memory.** A 165 x 768 x 1024 uint8 stack (124 MiB) is written to a temporary folder
   and predicted by :func:`core.predict.stack.predict_headless` (what ``python -m core predict``
   calls) in a fresh Python process, with the recipe's network at the default tiling (one
   768 x 1024 tile; ``--memory-model small``: a classic U-Net of width 4, to see the fixed part).
   The child reports its own high-water RSS
   (``VmHWM`` from ``/proc/self/status``, read at the end; ``ru_maxrss`` could carry the parent's
   across fork). A second child that only imports torch and SegDash and loads the checkpoint gives
   the fixed part. Target: peak under 1.5 GB. The temporary folder is deleted afterwards.

    python benchmarks/bench_inference.py [--slices 8] [--rounds 3] [--memory-model small|default]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import PEAK, ROOT, report

TARGET_RATIO = 1.3
TARGET_PEAK_MB = 1536.0
STACK_SHAPE = (165, 768, 1024)

CHILD = (
    PEAK
    + r"""
import json, sys, time
from core.predict.stack import predict_headless
t = time.perf_counter()
out = predict_headless(sys.argv[1], sys.argv[2], sys.argv[3], prob=sys.argv[4], device="cpu")
print(json.dumps({"seconds": time.perf_counter() - t, "slices": out["slices"], "peak_rss_mb": peak_rss_mb()}))
"""
)

BASE_CHILD = (
    PEAK
    + r"""
import json, sys
import torch
from core.nn.checkpoint import load_checkpoint
import core.predict.stack
ckpt = load_checkpoint(sys.argv[1])
print(json.dumps({"peak_rss_mb": peak_rss_mb()}))
"""
)


def save_untrained(path: Path, model_cfg, patch_size: int, window=(0.0, 255.0)) -> Path:
    """A checkpoint of a randomly initialised ``model_cfg`` network (seed 0)."""
    import torch

    from core.nn.checkpoint import save_checkpoint
    from core.nn.model import build_model

    torch.manual_seed(0)
    model = build_model(model_cfg).eval()
    names = [f"class{i}" for i in range(model_cfg.n_classes)]
    return save_checkpoint(
        path, model, model_cfg, class_names=names, norm_window=window, patch_size=patch_size, epoch=0, metrics={}
    )


def bare_forward(model, images: np.ndarray, window, batch: int = 4) -> float:
    """Seconds to normalise and run whole slices through ``model`` (sigmoid included), in the
    memory format prediction uses (channels-last)."""
    import torch

    from core.data.intensity import normalize

    model = model.to(memory_format=torch.channels_last)  # as predict_slice runs it
    t = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            x = torch.from_numpy(normalize(images[i : i + batch], window))[:, None]
            torch.sigmoid(model(x.contiguous(memory_format=torch.channels_last)))
    return time.perf_counter() - t


def ratio_part(tmp: Path, n_slices: int, rounds: int, log) -> tuple[list[dict], dict]:
    import torch

    from core.data.intensity import percentile_range
    from core.nn.checkpoint import load_checkpoint
    from core.nn.device import select_device
    from core.predict.config import PredictConfig
    from core.predict.inferer import default_tile, predict_slice
    from core.predict.stack import predict_stack
    from core.store.workspace import Workspace
    from core.train.config import default_config
    from core.workflow.sample import ensure_sample

    select_device("cpu")
    ws = Workspace(tmp / "ws")
    ensure_sample(ws)
    stack = ws.read_images("isbi2012")
    rc = default_config(2)
    path = save_untrained(tmp / "recipe.pt", rc.model, rc.patch_size, percentile_range(stack))
    ckpt = load_checkpoint(path)
    model, window = ckpt.model, ckpt.norm_window
    cfg = PredictConfig(device="cpu")
    sets = {  # the unlabeled test slices (content does not matter for time), and bigger random slices
        "512x512": (np.array(stack[30 : 30 + n_slices]), 1),
        "768x1024": (np.random.default_rng(0).integers(0, 256, (2, 768, 1024), dtype=np.uint8), 1),
    }
    rows = []
    for size, (images, batch) in sets.items():

        def run_slice(images=images) -> float:
            t = time.perf_counter()
            for img in images:
                predict_slice(ckpt, img, cfg)
            return time.perf_counter() - t

        def run_stack(images=images) -> float:
            t = time.perf_counter()
            predict_stack(ckpt, images, out_masks=tmp / "m.tif", out_prob=tmp / "p.tif", cfg=cfg)
            return time.perf_counter() - t

        arms = {
            f"bare forward (whole slices, batch {batch})": lambda images=images, batch=batch: bare_forward(
                model, images, window, batch
            ),
            "predict_slice (tiled, default)": run_slice,
            "predict_stack (tiled, to TIFF)": run_stack,
        }
        for fn in arms.values():  # warm-up: one-off allocations, lazy imports
            fn()
        times: dict[str, list[float]] = {k: [] for k in arms}
        for r in range(rounds):
            for name in list(arms) if r % 2 == 0 else list(arms)[::-1]:
                times[name].append(arms[name]())
            log(f"{size} round {r + 1}: " + ", ".join(f"{k.split(' ')[0]} {v[-1]:.2f} s" for k, v in times.items()))
        bare = statistics.median(times[next(iter(arms))])
        for name, ts in times.items():
            med = statistics.median(ts)
            row = {
                "what": name,
                "slices": f"{len(images)} x {size}",
                "seconds": med,
                "ratio_to_bare": med / bare,
                "megapixels_per_s": images.size / med / 1e6,
                "runs_s": [round(t, 3) for t in ts],
            }
            if name.startswith("predict_slice"):
                row.update(
                    target=f"<= {TARGET_RATIO}", met=med / bare <= TARGET_RATIO, gap=max(0.0, med / bare - TARGET_RATIO)
                )
            rows.append(row)
    extra = {
        "model": rc.model.describe(),
        "patch_size": rc.patch_size,
        "max_tile": default_tile(ckpt),
        "overlap": cfg.overlap,
        "tile_batch": cfg.batch_size,
        "rounds": rounds,
        "torch_threads": torch.get_num_threads(),
    }
    return rows, extra


def memory_part(tmp: Path, which: str, log) -> tuple[dict, dict]:
    import tifffile

    from core.nn.model import ModelConfig
    from core.train.config import default_config

    if which == "default":
        rc = default_config(2)
        mcfg, patch = rc.model, rc.patch_size
    else:
        mcfg, patch = ModelConfig(arch="classic", classic_width=4), 256
    ckpt = save_untrained(tmp / "mem.pt", mcfg, patch)
    stack_path = tmp / "stack.tif"
    z, h, w = STACK_SHAPE
    arr = tifffile.memmap(stack_path, shape=STACK_SHAPE, dtype=np.uint8, photometric="minisblack")
    rng = np.random.default_rng(0)
    for i in range(z):
        arr[i] = rng.integers(0, 256, (h, w), dtype=np.uint8)
    arr.flush()
    del arr
    base = subprocess.run(
        [sys.executable, "-c", BASE_CHILD, str(ckpt)], capture_output=True, text=True, cwd=ROOT, check=True
    )
    log(f"predicting {z}x{h}x{w} with {mcfg.describe()} in a child process ...")
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(ckpt), str(stack_path), str(tmp / "masks.tif"), str(tmp / "prob.tif")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if out.returncode:
        raise SystemExit(f"prediction child failed:\n{out.stderr[-3000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    base_mb = json.loads(base.stdout.strip().splitlines()[-1])["peak_rss_mb"]
    row = {
        "what": f"predict_headless {z}x{h}x{w} uint8 (child process)",
        "seconds": res["seconds"],
        "peak_rss_mb": res["peak_rss_mb"],
        "fixed_part_mb": base_mb,
        "target": f"< {TARGET_PEAK_MB:.0f} MB",
        "met": res["peak_rss_mb"] < TARGET_PEAK_MB,
    }
    return row, {
        "memory_model": mcfg.describe(),
        "memory_patch_size": patch,
        "stack_mib": z * h * w / 2**20,
        "fixed_part": "python + torch + SegDash imported, checkpoint loaded (VmHWM)",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=8, help="512x512 slices for the ratio (default 8)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds for the ratio (default 3)")
    ap.add_argument(
        "--memory-model",
        choices=("small", "default"),
        default="default",
        help="network for the memory run: the recipe's (default) or a classic U-Net width 4",
    )
    ap.add_argument("--dir", default=None, help="where to write the temporary files")
    args = ap.parse_args()

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="segdash-bench-infer-", dir=args.dir))
    try:
        rows, extra = ratio_part(tmp, args.slices, args.rounds, log)
        mem_row, mem_extra = memory_part(tmp, args.memory_model, log)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report("inference", rows + [mem_row], {**extra, **mem_extra})


if __name__ == "__main__":
    main()
