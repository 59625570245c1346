"""Sparse labels: the default recipe trained on simulated strokes of ISBI slices 00-23 against the same
recipe on their complete masks, both scored on the full truth of slices 24-29.

What runs (one process, one seed):

1. The bundled ISBI 2012 sample is imported into a temporary workspace. For each labeled fraction
   asked (default 0.5 %, 1 %, 3 %, 10 % and 100 %), what a user might draw is simulated from the
   truth of slices 0..23 (:func:`core.train.sparse.simulate_strokes`: straight strokes 3 px wide, at
   most 40 px long, kept inside one class, an equal share of the pixels per class; seeded), and
   stored as a dataset of partial masks (255 = not labeled); 100 % is the complete masks. The
   fraction actually labeled is reported.
2. Each dataset trains the default recipe (:func:`core.train.config.default_config`, with ``--set``
   overrides) through the dashboard's :class:`~core.train.job.TrainingJob` for ``--steps`` steps
   (default: the recipe's 2000); the loss and the validation count labeled pixels only.
3. ``best.pt`` (else ``last.pt``) is scored on slices 24..29 against their complete truth, tiled, no
   test-time flips (:func:`bench_accuracy.score`).

Target: Dice(cell) within 0.02 of the complete-mask model with at most 3 % of the pixels labeled.

    python benchmarks/bench_sparse.py [--steps 2000] [--fractions 0.005,0.01,0.03,0.1,1] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from _common import report
from bench_accuracy import TRAIN_Z, isbi_split, score, train

TARGET_GAP = 0.02
TARGET_FRACTION = 0.03


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=None, help="optimisation steps per run (default: the recipe's)")
    ap.add_argument("--fractions", default="0.005,0.01,0.03,0.1,1", help="labeled fractions, comma separated")
    ap.add_argument("--seed", type=int, default=0, help="seed of the simulated strokes")
    ap.add_argument("--set", default="{}", help="JSON overrides of the recipe")
    ap.add_argument("--name", default="sparse", help="result file name (benchmarks/results/<name>.json)")
    args = ap.parse_args()

    from core.data.masks import UNLABELED
    from core.nn.checkpoint import load_checkpoint
    from core.store.workspace import Workspace
    from core.train.config import TrainConfig, default_config
    from core.train.sparse import simulate_strokes

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    fractions = [float(f) for f in args.fractions.split(",")]
    cfg = replace(TrainConfig.from_dict(json.loads(args.set), base=default_config(2)), device="cpu")
    if args.steps:
        cfg = replace(cfg, epochs=max(1, -(-args.steps // cfg.steps_per_epoch)))
    tmp = tempfile.mkdtemp(prefix="segdash-bench-sparse-")
    rows = []
    load_before = os.getloadavg()
    try:
        ws = Workspace(Path(tmp))
        src, stack, truth, test_images, test_masks = isbi_split(ws)
        images = np.array(stack[TRAIN_Z.start : TRAIN_Z.stop])
        for fraction in fractions:
            rng = np.random.default_rng(args.seed)
            masks = [simulate_strokes(t, fraction, rng) for t in truth]
            labeled = float(np.mean([(m != UNLABELED).mean() for m in masks]))
            name = f"strokes-{fraction:g}"
            ws.create_dataset(name, images, masks, list(src.class_names), [src.slice_names[z] for z in TRAIN_Z])
            log(
                f"{name}: {100 * labeled:.2f} % of the pixels labeled; "
                f"training {cfg.epochs * cfg.steps_per_epoch} steps"
            )
            t0 = time.time()
            snap = train(ws, name, cfg, deadline=math.inf, log=log)
            train_s = time.time() - t0
            ckpt = load_checkpoint(snap["best_checkpoint"] or snap["last_checkpoint"])
            s = score(ckpt, test_images, test_masks, tta=False)
            rows.append(
                {
                    "target_fraction": fraction,
                    "labeled_fraction": labeled,
                    "dice_cell": s["dice_cell"],
                    "dice_membrane": s["dice_membrane"],
                    "pixel_error": s["pixel_error"],
                    "steps": cfg.epochs * cfg.steps_per_epoch,
                    "train_s": round(train_s, 1),
                }
            )
            log(
                f"  Dice cell {s['dice_cell']:.4f}, membrane {s['dice_membrane']:.4f}, "
                f"pixel error {s['pixel_error']:.4f}"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    complete = next((r for r in rows if r["target_fraction"] >= 1), None)
    within = [
        r
        for r in rows
        if complete is not None
        and r["labeled_fraction"] <= TARGET_FRACTION
        and complete["dice_cell"] - r["dice_cell"] <= TARGET_GAP
    ]
    report(
        args.name,
        rows,
        {
            "recipe": cfg.to_dict(),
            "seed": args.seed,
            "target": f"Dice(cell) within {TARGET_GAP} of complete masks with <= {TARGET_FRACTION:.0%} labeled",
            "target_met": bool(within),
            "load_before": load_before,
            "load_after": os.getloadavg(),
        },
    )


if __name__ == "__main__":
    main()
