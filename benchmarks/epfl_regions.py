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
    from core.nn.model import required_multiple
    from core.train.data import context_images, validation_tensors
    from core.train.finish import slice_probabilities

    ckpt = load_checkpoint(args.checkpoint)
    context = ckpt.context
    images, masks = _read_epfl()
    window, mult, cpu = tuple(ckpt.norm_window), required_multiple(ckpt.model_config), torch.device("cpu")
    threshold = ckpt.decision.threshold

    def probs(zs: list[int], crop: int) -> list[tuple[np.ndarray, np.ndarray]]:
        items = validation_tensors(context_images(images, zs, context), [masks[z] for z in zs], window, mult, crop)
        return slice_probabilities(ckpt.model, items, 2, cpu, None)

    def predict(zs: list[int], crop: int) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(p[1] >= threshold, t.astype(bool)) for p, t in probs(zs, crop)]

    rows = []
    for name, zs in BLOCKS.items():
        zs = list(zs)
        h, w = masks[0].shape
        centre = np.zeros((h, w), bool)
        centre[(h - CROP) // 2 : (h - CROP) // 2 + CROP, (w - CROP) // 2 : (w - CROP) // 2 + CROP] = True
        edge = np.ones((h, w), bool)
        edge[EDGE:-EDGE, EDGE:-EDGE] = False
        regions = {"whole": np.ones((h, w), bool), "centre_of_whole": centre, "ring": ~centre, "edge": edge}
        inter = dict.fromkeys(regions, 0)
        union = dict.fromkeys(regions, 0)
        whole = predict(zs, 0)
        for pred, truth in whole:
            for k, sel in regions.items():
                inter[k] += int((pred & truth)[sel].sum())
                union[k] += int((pred | truth)[sel].sum())
        crop = predict(zs, CROP)
        ci = sum(int((p & t).sum()) for p, t in crop)
        cu = sum(int((p | t).sum()) for p, t in crop)
        rows.append(
            {
                "block": name,
                "z": f"{zs[0]}-{zs[-1]}",
                "iou_crop_alone": ci / cu,
                **{f"iou_{k}": inter[k] / union[k] for k in regions},
                "fg_share_centre": float(np.mean([m[centre].mean() for m in masks[zs]])),
                "fg_share_ring": float(np.mean([m[~centre].mean() for m in masks[zs]])),
            }
        )
    from core.nn.decision import apply_decision, tune_decision
    from core.nn.metrics import confusion_matrix, scores_from_confusion

    val, test = probs(list(BLOCKS["val"]), 0), probs(list(BLOCKS["test"]), 0)
    decision, _ = tune_decision([p for p, _ in val], [t for _, t in val], 2)
    cm = sum(confusion_matrix(apply_decision(p, decision), t, 2) for p, t in test)
    vm = sum(confusion_matrix(apply_decision(p, decision), t, 2) for p, t in val)
    retuned = {
        "decision_whole_val": decision.to_dict(),
        "val_iou_whole_at_it": scores_from_confusion(vm)["iou_fg"],
        "test_iou_whole_at_it": scores_from_confusion(cm)["iou_fg"],
    }
    print(retuned)
    extra = {"checkpoint": args.checkpoint, "threshold": threshold, "crop": CROP, "edge_px": EDGE, "retuned": retuned}
    report(args.name, rows, extra)


if __name__ == "__main__":
    main()
