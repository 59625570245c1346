"""Where an EPFL model's validation and test scores come from: blocks of z, centre crops, whole slices.

Takes a checkpoint trained by ``bench_accuracy.py --data epfl`` (``--workspace`` keeps its runs)
and scores it, one forward pass a slice in float32 as the run's end does, on blocks of z of the
EPFL training volume: the run's validation block (z 108-119), the test block (z 130-164) and its
first 12 slices, and the last 12 training slices. For each block: foreground IoU of the centre
512 x 512 crop predicted alone (what the epochs' validation scores, ``val_crop``) and of the whole
768 x 1024 slices; and, of the whole-slice prediction, the IoU inside the centre 512 x 512, in the
ring outside it, and in a 32 px band at the slice's edges, with each region's foreground share.
Then the decision the run's end now takes (tuned on the whole validation slices) and the test
block's IoU at it, beside the checkpoint's own decision (tuned on the centre crops).

    python benchmarks/epfl_regions.py RUN/best.pt [--name epfl_regions]
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import report

BLOCKS = {
    "val": range(108, 120),
    "test": range(130, 165),
    "test_first12": range(130, 142),
    "train_last12": range(94, 106),
}
CROP = 512
EDGE = 32


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--name", default="epfl_regions")
    args = ap.parse_args()

    import torch
    from bench_accuracy import _read_epfl

    from core.nn.checkpoint import load_checkpoint
    from core.nn.decision import apply_decision, tune_decision
    from core.nn.metrics import confusion_matrix, scores_from_confusion
    from core.nn.model import required_multiple
    from core.train.data import context_images, validation_tensors
    from core.train.finish import slice_probabilities

    ckpt = load_checkpoint(args.checkpoint)
    images, masks = _read_epfl()
    window, mult, cpu = tuple(ckpt.norm_window), required_multiple(ckpt.model_config), torch.device("cpu")

    def probs(zs: list[int], crop: int) -> list[tuple[np.ndarray, np.ndarray]]:
        items = validation_tensors(context_images(images, zs, ckpt.context), [masks[z] for z in zs], window, mult, crop)
        return slice_probabilities(ckpt.model, items, 2, cpu, None)

    def iou(preds, decision, region: np.ndarray | None = None) -> float:
        """Foreground IoU of ``(probabilities, truth)`` pairs under ``decision``, in ``region`` only."""
        sel = slice(None) if region is None else region
        cm = sum(confusion_matrix(apply_decision(p, decision)[sel], t[sel], 2) for p, t in preds)
        return scores_from_confusion(cm)["iou_fg"]

    h, w = masks[0].shape
    centre = np.zeros((h, w), bool)
    centre[(h - CROP) // 2 : (h - CROP) // 2 + CROP, (w - CROP) // 2 : (w - CROP) // 2 + CROP] = True
    edge = np.ones((h, w), bool)
    edge[EDGE:-EDGE, EDGE:-EDGE] = False
    regions = {"whole": None, "centre_of_whole": centre, "ring": ~centre, "edge": edge}
    rows, whole = [], {}  # whole: the validation and test blocks' probabilities, for the re-tuning
    for name, zs in BLOCKS.items():
        zs = list(zs)
        block = probs(zs, 0)
        if name in ("val", "test"):
            whole[name] = block
        rows.append(
            {
                "block": name,
                "z": f"{zs[0]}-{zs[-1]}",
                "iou_crop_alone": iou(probs(zs, CROP), ckpt.decision),
                **{f"iou_{k}": iou(block, ckpt.decision, sel) for k, sel in regions.items()},
                "fg_share_centre": float(np.mean([m[centre].mean() for m in masks[zs]])),
                "fg_share_ring": float(np.mean([m[~centre].mean() for m in masks[zs]])),
            }
        )

    decision, _ = tune_decision([p for p, _ in whole["val"]], [t for _, t in whole["val"]], 2)
    retuned = {
        "decision_whole_val": decision.to_dict(),
        "val_iou_whole_at_it": iou(whole["val"], decision),
        "test_iou_whole_at_it": iou(whole["test"], decision),
    }
    print(retuned)
    extra = {
        "checkpoint": args.checkpoint,
        "threshold": ckpt.decision.threshold,
        "crop": CROP,
        "edge_px": EDGE,
        "retuned": retuned,
    }
    report(args.name, rows, extra)


if __name__ == "__main__":
    main()
