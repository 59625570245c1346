"""The live loop ("Train on my strokes" on the Label page): how soon a prediction shows after the
press, and whether it improves as the user corrects it.

What runs (one process, what the page calls):

1. The bundled ISBI 2012 stack (30 slices of 512x512) is imported into a temporary workspace with
   no masks; the "user" scribbles on slices 0, 1 and 2: strokes simulated from their truth
   (:func:`core.train.sparse.simulate_strokes`, ``--fraction`` of each slice's pixels, seeded),
   saved as drawn partial masks (255 = not labeled).
2. Round 1: :func:`core.workflow.live.start_round` on slice 1, as the button does (a fresh small
   network, the first round's budget); the time from the press to the prediction is measured.
3. Each later round (``--rounds`` in all): the user adds strokes where the prediction is wrong
   (strokes simulated from the truth inside the wrong pixels, ``--correct`` of the slice's
   pixels), then presses again; the round continues from the previous one.
4. After each round, outside the timed loop: its prediction of slice 1 against slice 1's complete
   truth (all pixels), and its checkpoint on slices 24-29 (never labeled) with
   :func:`bench_accuracy.score`.

Targets (issue 12, 2-core CPU, 512x512 slice): the first prediction within 60 s of the press, each
later one within 30 s.

    python benchmarks/bench_live.py [--rounds 4] [--fraction 0.01] [--correct 0.005] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import report
from bench_accuracy import TEST_Z, score

FIRST_TARGET_S, LATER_TARGET_S = 60.0, 30.0
STROKED, SHOWN = (0, 1, 2), 1


def _scores(pred: np.ndarray, truth: np.ndarray) -> dict:
    from core.nn.metrics import confusion_matrix, scores_from_confusion

    s = scores_from_confusion(confusion_matrix(pred, truth, 2))
    return {
        "slice_accuracy": 1 - s["pixel_error"],
        "slice_dice_cell": s["dice"][1],
        "slice_dice_membrane": s["dice"][0],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=4, help="rounds in all (default 4)")
    ap.add_argument("--fraction", type=float, default=0.01, help="share of pixels stroked on slices 0-2 (0.01)")
    ap.add_argument("--correct", type=float, default=0.005, help="share of slice 1 stroked as corrections per round")
    ap.add_argument("--seed", type=int, default=0, help="seed of the simulated strokes")
    ap.add_argument("--name", default="live", help="result file name (benchmarks/results/<name>.json)")
    args = ap.parse_args()

    from core.data.masks import UNLABELED
    from core.nn.checkpoint import load_checkpoint
    from core.store.workspace import Workspace
    from core.train.sparse import simulate_strokes
    from core.workflow.live import FIRST_BUDGET_S, LATER_BUDGET_S, start_round
    from core.workflow.sample import ensure_sample

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    rng = np.random.default_rng(args.seed)
    tmp = tempfile.mkdtemp(prefix="segdash-bench-live-")
    rows = []
    load_before = os.getloadavg()
    try:
        ws = Workspace(Path(tmp))
        ensure_sample(ws)
        src = ws.dataset("isbi2012")
        stack = np.asarray(ws.read_images("isbi2012"))
        _, truth = ws.read_masks("isbi2012")
        ws.create_dataset("live", stack, [None] * len(stack), list(src.class_names), list(src.slice_names))
        for z in STROKED:  # what the user draws before the first press
            ws.save_mask("live", z, simulate_strokes(truth[z], args.fraction, rng), status="labeled", source="drawn")
        test_images, test_truth = stack[TEST_Z.start : TEST_Z.stop], truth[TEST_Z.start : TEST_Z.stop]
        for k in range(1, args.rounds + 1):
            labeled = float(np.mean([(ws.read_mask("live", z) != UNLABELED).mean() for z in STROKED]))
            r = start_round(ws, "live", SHOWN)
            r.join()
            snap = r.snapshot()
            if snap["state"] != "done":
                raise SystemExit(f"round {k} ended {snap['state']}: {snap['error']}")
            pred = r.prediction
            ckpt = load_checkpoint(ws.run(snap["run_id"])["last_checkpoint"])
            held = score(ckpt, test_images, test_truth, tta=False, tuned=False)
            target = FIRST_TARGET_S if k == 1 else LATER_TARGET_S
            row = {
                "round": k,
                "labeled_fraction": labeled,
                "budget_s": snap["budget_s"],
                "steps": snap["steps"],
                "trained_s": round(snap["trained_s"], 1),
                "press_to_prediction_s": round(snap["elapsed_s"], 1),
                "target_s": target,
                "met": snap["elapsed_s"] <= target,
                **_scores(pred, truth[SHOWN]),
                "heldout_dice_cell": held["dice_cell"],
                "heldout_pixel_error": held["pixel_error"],
            }
            rows.append(row)
            log(
                f"round {k}: prediction {row['press_to_prediction_s']} s after the press ({row['steps']} steps); "
                f"slice {SHOWN} accuracy {row['slice_accuracy']:.3f}, held-out Dice(cell) {held['dice_cell']:.3f}"
            )
            # the user strokes where the prediction is wrong, then presses again
            wrong = np.where(pred != truth[SHOWN], truth[SHOWN], UNLABELED).astype(np.uint8)
            fix = simulate_strokes(wrong, args.correct * 1.5, rng)  # 1/3 of the budget goes to the 255 "class"
            drawn = fix != UNLABELED
            ws.edit_mask("live", SHOWN, lambda m, f=fix, d=drawn: np.where(d, f, m).astype(np.uint8), drawn=drawn)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(
        args.name,
        rows,
        {
            "budgets_s": [FIRST_BUDGET_S, LATER_BUDGET_S],
            "targets_s": [FIRST_TARGET_S, LATER_TARGET_S],
            "target_met": bool(rows) and all(r["met"] for r in rows),
            "seed": args.seed,
            "load_before": load_before,
            "load_after": os.getloadavg(),
            "at": time.strftime("%Y-%m-%d %H:%M"),
        },
    )


if __name__ == "__main__":
    main()
