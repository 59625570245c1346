"""How far a model's measurements can be trusted: the EPFL mitochondria held-out block (issue 29, point 6).

The EPFL training volume (165 slices of 768 x 1024, ``/work/shared/data/epfl-mito-train``) is
imported as one stack dataset whose slices 121-130 (z 120-129) are left unlabeled as a gap; the
default recipe is trained with ``python -m core train --test-slices 130-164`` (z 130-164 are never
trained nor validated on; the run picks its validation block at the end of z 0-119 with its own
gap), for ``--minutes`` (the trainer's own time budget, :mod:`core.train.budget`: epochs of 100
steps planned from their measured time, the cosine schedule ends with the time) or a fixed
``--steps``; the recipe's own is 2000 steps (20 epochs of 100): fewer fit 2 shared CPU cores, so the
JSON says how many steps the model had.
The whole dataset is then predicted with :func:`core.predict.dataset.predict_dataset` (stored in
the workspace as the Predictions page stores it) and :func:`core.workflow.measure.trust` compares
the prediction's objects with the human masks on the model's test slices, as
``python -m core measure --prediction RUN`` does; with ``--predict test`` only the 35 test slices
are predicted (``predict_stack``, what ``predict_dataset`` runs) and compared by the same
:func:`core.workflow.measure.compare_with_truth`, for a machine too busy to predict all 165.
Reported: objects matched one to one at IoU 0.5 (F1, precision, recall), count error %, mean-size
bias %, area-fraction bias %, KS distance of the size distributions; in 2D (objects per slice,
8-connected) and 3D (through the 35 test slices, 26-connected). No target: the issue asks for the
figures.

    python benchmarks/bench_measure_trust.py [--minutes 35 | --steps 1000] [--workspace DIR] [--run RUN]
                                               [--predict dataset|test]

``--workspace DIR`` keeps the workspace (default: a temporary folder, removed at the end);
``--run RUN`` skips training and predicts with that run of the workspace's ``epfl`` dataset.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, report

EPFL = Path(os.environ.get("SEGDASH_EPFL", ROOT.parent / "shared" / "data" / "epfl-mito-train"))
GAP, TEST = range(120, 130), range(130, 165)
STEPS_PER_EPOCH = 100  # the recipe's (core.train.config.default_config)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _import(ws) -> None:
    import numpy as np
    from PIL import Image

    names = sorted(p.name for p in (EPFL / "images").glob("*.png"))
    if len(names) != 165:
        raise SystemExit(f"{EPFL}: expected 165 slices, found {len(names)}")
    images = np.stack([np.asarray(Image.open(EPFL / "images" / n).convert("L")) for n in names])
    masks = [(np.asarray(Image.open(EPFL / "masks" / n)) > 127).astype(np.uint8) for n in names]
    labeled = [None if z in GAP else m for z, m in enumerate(masks)]
    ws.create_dataset("epfl", images, labeled, ["background", "mitochondrion"], [n[:-4] for n in names])


def _train(root: Path, steps: int | None, minutes: float) -> dict:
    """``python -m core train`` in a child process (the default recipe, ``steps`` steps or ``minutes``); its JSON."""
    cfg = root / "bench_cfg.json"
    plan = {"epochs": max(1, -(-steps // STEPS_PER_EPOCH)), "minutes": 0} if steps else {"minutes": minutes}
    cfg.write_text(json.dumps({**plan, "device": "cpu"}))
    cmd = [sys.executable, "-m", "core", "train", "--workspace", str(root), "--dataset", "epfl", "-q"]
    cmd += ["--config", str(cfg), "--test-slices", f"{TEST.start}-{TEST.stop - 1}"]
    log("$ " + " ".join(cmd[1:]))
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"train exited {proc.returncode}: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _run_info(ws, run: str) -> dict:
    """What the run did, from the catalog: steps, minutes, split, its own scores (the run's end)."""
    rec = ws.run(run)
    if rec is None:
        raise SystemExit(f"no run {run} in {ws.root}")
    extra, p = rec.extra or {}, rec.progress or {}
    finish = extra.get("finish") or {}
    epochs = ws.epochs_done([run]).get(run, 0)  # epochs recorded, each steps_per_epoch steps
    spe = int(p.get("steps_per_epoch") or rec.config.get("steps_per_epoch") or STEPS_PER_EPOCH)
    return {
        "run": run,
        "state": rec.state,
        "epochs": epochs,
        "steps": epochs * spe,
        "recipe_steps": 20 * STEPS_PER_EPOCH,
        "minutes": (rec.wall_time or 0) / 60,
        "val_slices": extra.get("val_slices"),
        "test_slices": extra.get("test_slices"),
        "decision": finish.get("decision"),
        "val_scores": finish.get("val"),
        "test_scores": finish.get("test"),
    }


def _checkpoint(ws, run: str) -> Path:
    for name in ("best.pt", "last.pt"):
        if (ws.run_dir(run) / name).is_file():
            return ws.run_dir(run) / name
    raise SystemExit(f"no checkpoint of run {run} in {ws.root}")


def _predict_test(ws, ckpt: Path):
    """The test slices predicted with :func:`~core.predict.stack.predict_stack` (what ``predict_dataset``
    runs; a 2D model without context predicts a slice alone): a (Z, Y, X) masks array holding them
    (other slices 0, never read) and the model's split."""
    import numpy as np

    from core.nn.checkpoint import load_checkpoint
    from core.predict.config import PredictConfig
    from core.predict.probabilities import read_prediction_tiff
    from core.predict.stack import predict_stack

    ck = load_checkpoint(ckpt, device="cpu")
    if ck.context:
        raise SystemExit("--predict test is for 2D models (context 0): use --predict dataset")
    images = ws.read_images("epfl")
    masks = np.zeros(images.shape, np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "masks.tif"
        predict_stack(ck, np.asarray(images[TEST.start : TEST.stop]), out_masks=out, cfg=PredictConfig(device="cpu"))
        masks[TEST.start : TEST.stop] = read_prediction_tiff(out)
    return masks, ck.extra.get("split") or {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=35.0, help="training time budget (default 35)")
    ap.add_argument("--steps", type=int, help="a fixed number of training steps instead (the recipe's: 2000)")
    ap.add_argument("--workspace", help="keep the workspace here (default: a temporary folder)")
    ap.add_argument("--run", help="skip training: predict with this run of the workspace")
    ap.add_argument(
        "--predict",
        choices=["dataset", "test"],
        default="dataset",
        help="dataset: predict_dataset of all 165 slices, stored, judged by trust(); "
        "test: only the 35 test slices with predict_stack, judged by compare_with_truth (the same comparison)",
    )
    ap.add_argument("--name", default="measure_trust")
    args = ap.parse_args()

    from core.predict.config import PredictConfig
    from core.predict.dataset import predict_dataset
    from core.store.workspace import Workspace
    from core.workflow.measure import compare_with_truth, trust

    tmp = None if args.workspace else tempfile.mkdtemp(prefix="segdash-bench-trust-")
    root = Path(args.workspace or tmp)
    t0 = time.time()
    info: dict = {
        "data": str(EPFL),
        "gap": "z 120-129 (unlabeled)",
        "test": "z 130-164",
        "load_before": os.getloadavg(),
    }
    try:
        ws = Workspace(root)
        if not ws.has_dataset("epfl"):
            _import(ws)
        if args.run:
            run, ckpt = args.run, None
        else:
            t = time.time()
            summary = _train(root, args.steps, args.minutes)
            info["train_wall_min"] = (time.time() - t) / 60
            run, ckpt = summary["run_id"], summary.get("best_checkpoint") or summary.get("last_checkpoint")
        info["train"] = {
            **_run_info(ws, run),
            "budget": f"{args.steps} steps" if args.steps else f"{args.minutes:g} min",
        }
        ckpt = Path(ckpt) if ckpt else _checkpoint(ws, run)
        t = time.time()
        if args.predict == "dataset":
            log(f"run {run}: predicting the dataset with {ckpt}")
            pred = predict_dataset(ws, "epfl", ckpt, PredictConfig(device="cpu"), run_id=run)
            log(f"predicted {pred.n_done} slices")

            def judge(mode: str):
                return trust(ws, "epfl", run, mode=mode)
        else:
            log(f"run {run}: predicting the test slices with {ckpt}")
            masks, parts = _predict_test(ws, ckpt)

            def judge(mode: str):
                return compare_with_truth(ws, "epfl", masks, parts, mode=mode)

        info["predict"] = args.predict
        info["predict_s"] = time.time() - t
        log(f"predicted in {info['predict_s']:.0f} s")
        rows = []
        for mode in ("2d", "3d"):
            t = time.time()
            tr = judge(mode)
            for r in tr.rows:
                rows.append({"mode": mode, "part": tr.part, "slices": len(tr.zs), **r, "seconds": time.time() - t})
            info[f"sentence_{mode}"] = tr.sentence
            info[f"notes_{mode}"] = tr.notes
            log(tr.sentence)
        info.update(run=run, checkpoint=str(ckpt), total_min=(time.time() - t0) / 60, load_after=os.getloadavg())
        report(args.name, rows, info)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
