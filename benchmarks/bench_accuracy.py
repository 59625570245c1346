"""Accuracy: train the default recipe on ISBI 2012 slices 00-23, score whole held-out slices 24-29.

What runs:

1. The bundled ISBI 2012 sample is imported into a temporary workspace; a dataset ``isbi-train``
   is made of slices 0..23 only (images and masks), so the held-out slices 24..29 do not even
   enter the normalisation window. The training job splits ``isbi-train`` into training and
   validation slices itself (``val_fraction`` of the recipe).
2. :func:`core.train.config.default_config` (or it with ``--set`` overrides) is trained through the
   same :class:`core.train.job.TrainingJob` the dashboard uses, under a time budget
   (``--minutes``, training and scoring together): the trainer's own budget (``"minutes"`` in the
   config, :mod:`core.train.budget`: epochs replanned from their measured times, so the learning
   rate schedule ends with the time), the scoring's reserve taken off; the job is also stopped at
   the deadline whatever happens (``last.pt`` is kept, and scored when there is no ``best.pt``).
3. ``best.pt`` (the best validation Dice; the checkpoint the dashboard offers) is scored on
   slices 24..29 with :func:`core.predict.inferer.predict_slice` at the default tiling (see
   :func:`core.predict.inferer.default_tile`; overlap 0.25, Gaussian blending), without and with
   test-time flips (``tta``), with the decision the run tuned on its validation slices (what
   prediction uses by default), and plain at threshold 0.5 for comparison. ``isbi-train``'s slices
   are a stack, so the run validates on a block at its end (slices 22-23) with a gap of 2.

Scores, over all pixels of the six slices: pixel error (1 - accuracy), Dice and IoU of each
class (0 membrane, 1 cell), and the foreground-restricted Rand error (adapted Rand error, as
SNEMI3D / ``skimage.metrics.adapted_rand_error``): 4-connected components of the cell class in
truth and prediction, pixels restricted to the truth's cells, ``1 - F`` of pair precision and
recall, averaged over slices. The ISBI 2012 server also thinned borders first; this does not.

Targets: pixel error <= 0.055 and Dice(cell) >= 0.96 within 15 minutes on a 2-core CPU.

``--data epfl`` (:func:`epfl`): the EPFL mitochondria training volume (165 slices of 768 x 1024,
``/work/shared/data/epfl-mito-train``, see its SOURCE.md) as one stack dataset whose slices
121-130 (z 120-129) are left unlabeled as a gap; trained through ``python -m core train
--test-slices 130-164`` (slices 131-165 are never trained nor validated on): the run validates on
a block at the end of slices 1-120 (with its own gap), tunes the decision there, and scores the
test block itself. The budget is the trainer's own (``"minutes"`` in the config,
:mod:`core.train.budget`: epochs planned from their measured times, the schedule ends with the
time; the end of the run, tuning and test scoring, comes after it). Reported: foreground IoU on
the test block (the run's own score, and by ``predict_slice`` with 4 flips, with ``--tta``), the
validation foreground IoU beside it, of whole slices as the test one (the run's end scores them so
since 2026-11-30; before, the centre 512 px crops the epochs validate on: see ``epfl_regions.py``);
the gap between the two is the honesty measure; time.
Targets: test IoU >= 0.87, |validation - test| <= 0.03.
(``--tta``: the test block is also predicted with 4 flips, 4x the scoring time.)

``--data multiclass`` (:func:`multiclass`): a synthetic 3-class stack (two kinds of blobs that
persist through z on textured noise), trained through ``TrainingJob`` with a test block at the end;
test mean IoU and per-class IoU beside validation.

``--arms '[{}, {"context": 2}]'`` trains each set of overrides in turn on the same data and
budget (side by side in one run, so a busy machine slows each alike).

    python benchmarks/bench_accuracy.py [--minutes 15] [--set '{"lr": 3e-3}'] [--steps N]
    python benchmarks/bench_accuracy.py --data epfl --minutes 12 [--arms '[{}, {"context": 2}]']
    python benchmarks/bench_accuracy.py --data multiclass --minutes 3
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

TRAIN_Z = range(0, 24)
TEST_Z = range(24, 30)
TARGET_PIXEL_ERROR = 0.055
TARGET_DICE_CELL = 0.96
# the safety stop comes this long after the planned end, so that it does not cut the run's own end
# (the decision tuned on validation, test slices scored: core.train.finish)
FINISH_GRACE_S = 120.0
SCORE_RESERVE_S = 90.0  # kept back for tuning the decision and scoring (three passes over 6 slices, one with 4 flips)


# -- scores ------------------------------------------------------------------------------------


def adapted_rand_error(truth_cells: np.ndarray, pred_cells: np.ndarray) -> float | None:
    """Foreground-restricted Rand error of two (Y, X) boolean cell maps; ``None`` without scipy.

    Components are 4-connected regions of the cell class; pixels where the truth is membrane are
    left out; membrane pixels of the prediction inside true cells form one segment (label 0), so a
    thick predicted membrane counts against recall. Returns ``1 - F`` of pair precision / recall.
    """
    try:
        from scipy import ndimage, sparse
    except ImportError:
        return None
    gt, _ = ndimage.label(truth_cells)
    seg, _ = ndimage.label(pred_cells)
    keep = gt > 0
    a, b = gt[keep].astype(np.int64), seg[keep].astype(np.int64)
    n = a.size
    if n == 0:
        return math.nan
    cont = sparse.coo_matrix((np.ones(n), (a, b))).tocsr()
    sum_ij = float((cont.data.astype(np.float64) ** 2).sum()) - n
    sum_a = float((np.asarray(cont.sum(axis=1)).ravel() ** 2).sum()) - n
    sum_b = float((np.asarray(cont.sum(axis=0)).ravel() ** 2).sum()) - n
    precision = sum_ij / sum_b if sum_b else 1.0
    recall = sum_ij / sum_a if sum_a else 1.0
    return 1.0 - 2.0 * precision * recall / (precision + recall) if precision + recall else 1.0


def score(ckpt, images: np.ndarray, truths: np.ndarray, tta: bool, tuned: bool = True) -> dict:
    """Predict each (Y, X) slice whole (tiled, default overlap) and score it against its truth, with
    the checkpoint's decision tuned on validation (``tuned``, what prediction uses) or at 0.5."""
    from core.nn.decision import Decision, apply_decision
    from core.nn.metrics import confusion_matrix, scores_from_confusion
    from core.predict.config import PredictConfig
    from core.predict.inferer import predict_slice

    decision = ckpt.decision if tuned else Decision()
    t = time.perf_counter()
    cm = np.zeros((2, 2), np.int64)
    rand = []
    for img, truth in zip(images, truths):
        pred = apply_decision(predict_slice(ckpt, img, PredictConfig(tta=tta, device="cpu")), decision)
        cm += confusion_matrix(pred, truth, 2)
        rand.append(adapted_rand_error(truth == 1, pred == 1))
    s = scores_from_confusion(cm)
    return {
        "pixel_error": s["pixel_error"],
        "dice_membrane": s["dice"][0],
        "dice_cell": s["dice"][1],
        "iou_membrane": s["iou"][0],
        "iou_cell": s["iou"][1],
        "rand_error": None if rand[0] is None else float(np.mean(rand)),
        "score_s": time.perf_counter() - t,
    }


def isbi_split(ws) -> tuple:
    """``(sample's DatasetInfo, its image stack, masks of slices 0..23, images and masks of 24..29)``;
    the bundled sample is imported into ``ws`` first when missing."""
    from core.workflow.sample import ensure_sample

    if not ws.has_dataset("isbi2012"):
        ensure_sample(ws)
    stack = ws.read_images("isbi2012")
    _, train_masks = ws.read_masks("isbi2012", list(TRAIN_Z))
    _, test_masks = ws.read_masks("isbi2012", list(TEST_Z))
    return ws.dataset("isbi2012"), stack, train_masks, np.array(stack[TEST_Z.start : TEST_Z.stop]), test_masks


# -- training under a budget -------------------------------------------------------------------


def train(ws, dataset: str, cfg, deadline: float, log, fg_key: str | None = "val_dice_fg") -> dict:
    from core.train.job import TrainingJob
    from core.train.registry import registry

    t0 = time.time()
    job = registry().start(TrainingJob(ws, dataset, cfg))
    seen = 0
    stopped_at_deadline = False
    while not job.join(1.0):
        snap = job.snapshot()
        for h in snap["history"][seen:]:
            log(
                f"  epoch {h['epoch']:>3}  {time.time() - t0:6.0f} s  loss {h['train_loss']:.4f}  "
                f"val pixel error {h['val_pixel_error']:.4f}  val Dice {h[fg_key or 'val_dice']:.4f}  "
                f"{h['images_per_s']:.2f} patches/s"
            )
        seen = len(snap["history"])
        if time.time() > deadline and not stopped_at_deadline:
            log("  time is up: stopping the job (last.pt keeps the weights reached)")
            job.stop()
            stopped_at_deadline = True
    snap = job.snapshot()
    if snap["state"] == "failed":
        raise SystemExit(f"training failed: {snap['error']}")
    return {**snap, "stopped_at_deadline": stopped_at_deadline}


# -- main --------------------------------------------------------------------------------------


EPFL = Path(os.environ.get("SEGDASH_EPFL", "/work/shared/data/epfl-mito-train"))
EPFL_TRAIN, EPFL_GAP, EPFL_TEST = range(0, 120), range(120, 130), range(130, 165)
TARGET_EPFL_IOU = 0.87
TARGET_HONESTY = 0.03


def _read_epfl() -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    names = sorted(p.name for p in (EPFL / "images").glob("*.png"))
    if len(names) != 165:
        raise SystemExit(f"{EPFL}: expected 165 slices, found {len(names)}")
    images = np.stack([np.asarray(Image.open(EPFL / "images" / n)) for n in names])
    masks = np.stack([(np.asarray(Image.open(EPFL / "masks" / n)) > 127).astype(np.uint8) for n in names])
    return images, masks


def _cli_train(root: Path, dataset: str, cfg: dict, test: range, log) -> dict:
    """``python -m core train`` in a child process; its last-line JSON."""
    import subprocess

    cfg_path = root / f"cfg-{time.time_ns()}.json"
    cfg_path.write_text(json.dumps(cfg))
    cmd = [sys.executable, "-m", "core", "train", "--workspace", str(root), "--dataset", dataset]
    cmd += ["--config", str(cfg_path), "--test-slices", f"{test.start}-{test.stop - 1}"]
    log("  $ " + " ".join(cmd[1:]))
    proc = subprocess.run(cmd, cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"train exited {proc.returncode}: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _tta_iou(checkpoint: str, images: np.ndarray, truths: np.ndarray, stack: np.ndarray, zs: range) -> float:
    """Foreground IoU of ``predict_slice`` with 4 flips and the checkpoint's decision on slices ``zs``."""
    from core.nn.checkpoint import load_checkpoint
    from core.nn.decision import apply_decision
    from core.nn.metrics import confusion_matrix, scores_from_confusion
    from core.predict.config import PredictConfig
    from core.predict.inferer import predict_slice, slice_input

    ckpt = load_checkpoint(checkpoint)
    cm = np.zeros((2, 2), np.int64)
    for z in zs:
        probs = predict_slice(ckpt, slice_input(ckpt, stack, z), PredictConfig(tta=True, device="cpu"))
        cm += confusion_matrix(apply_decision(probs, ckpt.decision), truths[z], 2)
    return scores_from_confusion(cm)["iou_fg"]


def epfl(args, arms: list[dict], log) -> None:
    """Train each arm on EPFL slices 1-120 through the CLI, test on slices 131-165 (see the docstring)."""
    from core.store.workspace import Workspace
    from core.train.config import TrainConfig, default_config

    t_start = time.time()
    images, masks = _read_epfl()
    tmp = tempfile.mkdtemp(prefix="segdash-bench-epfl-")
    root = Path(args.workspace or tmp)
    rows = []
    try:
        ws = Workspace(root)
        labeled = [None if z in EPFL_GAP else masks[z] for z in range(len(images))]
        ws.create_dataset(
            "epfl", images, labeled, ["background", "mitochondrion"], [f"{z + 1:03d}" for z in range(165)]
        )
        for arm in arms:
            over = {**json.loads(args.set), **arm}
            cfg = TrainConfig.from_dict(over, base=default_config(2))
            t_arm = time.time()
            if args.steps:  # a fixed number of steps
                plan = {"epochs": max(1, -(-args.steps // cfg.steps_per_epoch)), "minutes": 0}
            else:  # the trainer's own time budget (core.train.budget): epochs planned from their times
                plan = {"minutes": args.minutes}
            log(f"arm {arm}: {plan}; load {os.getloadavg()[0]:.2f}")
            load_before = os.getloadavg()
            summary = _cli_train(root, "epfl", {**over, **plan, "device": "cpu"}, EPFL_TEST, log)
            train_s = time.time() - t_arm
            test, val = summary["test_scores"] or {}, summary["val_scores"] or {}
            t_tta = time.time()
            ckpt_path = summary["best_checkpoint"] or summary["last_checkpoint"]
            tta = _tta_iou(ckpt_path, images, masks, images, EPFL_TEST) if args.tta else None
            finish = (ws.run(summary["run_id"])["extra"] or {}).get("finish") or {}
            rows.append(
                {
                    "arm": json.dumps(arm) if arm else "default",
                    "test_iou_fg": test.get("iou_fg"),
                    "test_iou_fg_tta": tta,
                    "val_iou_fg": val.get("iou_fg"),
                    "val_minus_test": (val.get("iou_fg") or 0) - (test.get("iou_fg") or 0),
                    "test_iou_fg_at_0.5": (finish.get("test_default") or {}).get("iou_fg"),
                    "decision": summary["decision"],
                    "steps": summary["epochs"] * cfg.steps_per_epoch,
                    "train_min": train_s / 60.0,
                    "tta_s": time.time() - t_tta,
                    "split": {k: format_z(v) for k, v in summary["split"].items()},
                    "load_avg_before": load_before,
                    "load_avg_after": os.getloadavg(),
                    "met": (test.get("iou_fg") or 0) >= TARGET_EPFL_IOU
                    and abs((val.get("iou_fg") or 0) - (test.get("iou_fg") or 0)) <= TARGET_HONESTY,
                }
            )
            _epfl_report(args, rows, t_start)  # after each arm: a long run keeps what it measured
    finally:
        if tmp and not args.workspace:
            shutil.rmtree(tmp, ignore_errors=True)


def _epfl_report(args, rows: list[dict], t_start: float) -> None:
    report(
        args.name if args.name != "accuracy" else "accuracy_epfl",
        rows,
        {
            "data": str(EPFL),
            "train_val_slices": "1-120 (z 0-119)",
            "gap_slices": "121-130 (unlabeled)",
            "test_slices": "131-165 (z 130-164)",
            "minutes_per_arm": None if args.steps else args.minutes,
            "steps_per_arm": args.steps,
            "total_s": time.time() - t_start,
            "targets": {"test_iou_fg_min": TARGET_EPFL_IOU, "abs_val_minus_test_max": TARGET_HONESTY},
        },
    )


def format_z(zs: list[int]) -> str:
    from core.data.zrange import format_slices

    return format_slices(zs)


def _synthetic_multiclass(n: int = 48, size: int = 192, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(Z, Y, X) uint8 images and 3-class masks: round blobs (class 1, bright, smooth) and elongated
    ones (class 2, mid-grey, striped) that drift slowly through z, on noisy background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    blobs = [(rng.uniform(20, size - 20, 2), rng.uniform(-0.6, 0.6, 2), int(rng.integers(1, 3))) for _ in range(14)]
    images = np.zeros((n, size, size), np.uint8)
    masks = np.zeros((n, size, size), np.uint8)
    for z in range(n):
        img = rng.normal(90, 25, (size, size)).astype(np.float32)
        m = np.zeros((size, size), np.uint8)
        for (cy, cx), (vy, vx), k in blobs:
            py, px = cy + vy * z, cx + vx * z
            if k == 1:
                inside = (yy - py) ** 2 + (xx - px) ** 2 < 9**2
            else:
                inside = ((yy - py) / 5.0) ** 2 + ((xx - px) / 14.0) ** 2 < 1
            m[inside] = k
        img[m == 1] += 60
        img[m == 2] += 25 + 20 * np.sin(xx[m == 2] / 1.5)
        images[z] = np.clip(img, 0, 255).astype(np.uint8)
        masks[z] = m
    return images, masks


def multiclass(args, arms: list[dict], log) -> None:
    """Train each arm on the synthetic 3-class stack; test block z 40-47, never trained on."""
    from core.store.workspace import Workspace
    from core.train.config import TrainConfig, default_config

    images, masks = _synthetic_multiclass()
    test = list(range(40, 48))
    tmp = tempfile.mkdtemp(prefix="segdash-bench-mc-")
    rows = []
    try:
        ws = Workspace(tmp)
        ws.create_dataset("mc", images, list(masks), ["background", "round", "long"])
        for arm in arms:
            over = {**json.loads(args.set), **arm, "test_slices": test, "patch_size": 128, "device": "cpu"}
            over.setdefault("minutes", max(0.5, args.minutes - 0.5))  # the trainer's budget; scoring after
            cfg = TrainConfig.from_dict(over, base=default_config(3))
            t0 = time.time()
            snap = train(ws, "mc", cfg, deadline=t0 + args.minutes * 60.0 + FINISH_GRACE_S, log=log, fg_key=None)
            fin = snap["test_scores"]
            rows.append(
                {
                    "arm": json.dumps(arm) if arm else "default",
                    "test_mean_iou": fin.get("test", {}).get("mean_iou"),
                    "test_iou_per_class": fin.get("test", {}).get("iou"),
                    "val_mean_iou": fin.get("val", {}).get("mean_iou"),
                    "test_mean_iou_plain_argmax": fin.get("test_default", {}).get("mean_iou"),
                    "decision": fin.get("decision"),
                    "steps": snap["epoch"] * cfg.steps_per_epoch,
                    "train_min": (time.time() - t0) / 60.0,
                }
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(args.name if args.name != "accuracy" else "accuracy_multiclass", rows, {"test_slices": test})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", choices=["isbi", "epfl", "multiclass"], default="isbi", help="which benchmark")
    ap.add_argument("--tta", action="store_true", help="epfl: also score the test block with 4 flips (slow)")
    ap.add_argument("--arms", default="[{}]", help="JSON list of override sets to train in turn (epfl, multiclass)")
    ap.add_argument("--minutes", type=float, default=15.0, help="budget for training + scoring (default 15)")
    ap.add_argument("--set", default="{}", help="JSON overrides of the recipe, e.g. '{\"lr\": 0.003}'")
    steps_help = "train this many steps (epochs = steps / steps_per_epoch) instead of fitting the budget"
    ap.add_argument("--steps", type=int, help=steps_help)
    ap.add_argument("--workspace", default=None, help="workspace folder to keep (default: a temporary one)")
    ap.add_argument("--name", default="accuracy", help="result file name (benchmarks/results/<name>.json)")
    args = ap.parse_args()

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if args.data != "isbi":
        return (epfl if args.data == "epfl" else multiclass)(args, json.loads(args.arms), log)
    t_start = time.time()
    budget_s = args.minutes * 60.0

    import torch

    from core.nn.checkpoint import load_checkpoint
    from core.store.workspace import Workspace
    from core.train.config import TrainConfig, default_config

    tmp = None if args.workspace else tempfile.mkdtemp(prefix="segdash-bench-acc-")
    root = Path(args.workspace or tmp)
    try:
        ws = Workspace(root)
        src, stack, train_masks, test_images, test_masks = isbi_split(ws)
        dataset = f"isbi-train-{time.strftime('%H%M%S')}"
        ws.create_dataset(
            dataset,
            np.array(stack[TRAIN_Z.start : TRAIN_Z.stop]),
            list(train_masks),
            list(src.class_names),
            [src.slice_names[z] for z in TRAIN_Z],
        )

        base = default_config(2)
        cfg = TrainConfig.from_dict(json.loads(args.set), base=base)
        cfg = replace(cfg, device="cpu")
        planned = cfg.epochs
        train_budget = budget_s - (time.time() - t_start) - SCORE_RESERVE_S
        if args.steps:
            cfg = replace(cfg, epochs=max(1, -(-args.steps // cfg.steps_per_epoch)), minutes=0.0)
        else:  # the trainer's own budget (core.train.budget): epochs planned from their measured times
            cfg = replace(cfg, minutes=max(train_budget, 60.0) / 60.0)
        log(f"recipe: {json.dumps(cfg.to_dict())}")
        log(f"up to {cfg.epochs} epochs; training budget {train_budget:.0f} s; load {os.getloadavg()[0]:.2f}")
        load_before = os.getloadavg()
        t_train = time.time()
        snap = train(
            ws,
            dataset,
            cfg,
            deadline=t_train + max(train_budget, 1.0) + FINISH_GRACE_S if not args.steps else math.inf,
            log=log,
        )
        train_s = time.time() - t_train
        which = "best" if snap["best_checkpoint"] else "last"
        ckpt = load_checkpoint(snap[f"{which}_checkpoint"])
        ckpt_epoch = ckpt.epoch
        plain = score(ckpt, test_images, test_masks, tta=False)
        flips = score(ckpt, test_images, test_masks, tta=True)
        at_half = score(ckpt, test_images, test_masks, tta=False, tuned=False)
        total_s = time.time() - t_start
        load_after = os.getloadavg()
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    rows = []
    for name, s in (("tiled", plain), ("tiled + 4 flips (tta)", flips), ("tiled, threshold 0.5", at_half)):
        rows.append(
            {
                "prediction": name,
                "pixel_error": s["pixel_error"],
                "dice_cell": s["dice_cell"],
                "dice_membrane": s["dice_membrane"],
                "iou_cell": s["iou_cell"],
                "iou_membrane": s["iou_membrane"],
                "rand_error": s["rand_error"],
                "score_s": s["score_s"],
                "met": s["pixel_error"] <= TARGET_PIXEL_ERROR
                and s["dice_cell"] >= TARGET_DICE_CELL
                and total_s <= budget_s + 30,
                "gap_pixel_error": max(0.0, s["pixel_error"] - TARGET_PIXEL_ERROR),
                "gap_dice_cell": max(0.0, TARGET_DICE_CELL - s["dice_cell"]),
            }
        )
    hist = snap["history"]
    extra = {
        "recipe": cfg.to_dict(),
        "overrides": json.loads(args.set),
        "epochs_planned": planned,
        "epochs_trained": snap["epoch"],
        "epochs_at_the_end": snap.get("epochs"),
        "steps_trained": snap["epoch"] * cfg.steps_per_epoch,
        "state": snap["state"],
        "stopped_at_deadline": snap["stopped_at_deadline"],
        "checkpoint_scored": which,
        "checkpoint_epoch": ckpt_epoch,
        "train_s": train_s,
        "total_s": total_s,
        "budget_s": budget_s,
        "device": snap["device"],
        "torch_threads": torch.get_num_threads(),
        "load_avg_before": load_before,
        "load_avg_after": load_after,
        "train_slices": snap["train_slices"],
        "val_slices": snap["val_slices"],
        "decision": ckpt.decision.to_dict(),
        "test_slices": list(TEST_Z),
        "mean_patches_per_s": float(np.mean([h["images_per_s"] for h in hist])) if hist else None,
        "history": [
            {k: h[k] for k in ("epoch", "train_loss", "val_pixel_error", "val_dice_fg", "images_per_s", "time_s")}
            for h in hist
        ],
        "targets": {"pixel_error_max": TARGET_PIXEL_ERROR, "dice_cell_min": TARGET_DICE_CELL, "minutes": args.minutes},
        "rand_error_definition": "adapted Rand error (1 - F) on 4-connected cell components, truth cells only",
    }
    report(args.name, rows, extra)


if __name__ == "__main__":
    main()
