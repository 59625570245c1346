"""``python -m core measure``: objects of a dataset's masks, a stored prediction or a ``core predict``
output, measured into CSV or Excel, with the trust figures of a prediction against human truth."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import SegDashError
from ._common import notice, workspace

__all__ = ["run_measure"]


def run_measure(args: argparse.Namespace) -> dict[str, Any]:
    """Measure, write ``--out`` (and ``--labels-out``); the summary with counts and trust figures."""
    from ..measure.tables import write_labels, write_table
    from ..workflow.measure import Source, measure, parse_pixel_size, trust, write_labels_zarr

    out = Path(args.out)
    if out.suffix.lower() not in (".csv", ".xlsx"):
        raise SegDashError(f"--out {out.name}: write objects to a .csv or .xlsx file")
    labels_out = Path(args.labels_out) if args.labels_out else None
    if labels_out and labels_out.suffix.lower() not in (".tif", ".tiff", ".zarr"):
        raise SegDashError(
            f"--labels-out {labels_out.name}: the label image is a .tif file or an OME-Zarr .zarr folder"
        )
    if labels_out and labels_out.suffix.lower() == ".zarr" and labels_out.exists():
        raise SegDashError(f"--labels-out {labels_out.name}: already exists; choose a new name or remove it first")
    px = parse_pixel_size(args.pixel_size) if args.pixel_size else None
    ws = workspace(args)
    if not ws.has_dataset(args.dataset):
        raise SegDashError(f"no dataset named {args.dataset!r} (python -m core list shows them)")
    if args.masks and not Path(args.masks).exists():
        raise SegDashError(f"--masks {args.masks}: no such file")
    source = (
        Source("prediction", args.prediction)
        if args.prediction
        else Source("file", str(args.masks))
        if args.masks
        else Source("masks")
    )
    settings = {"mode": args.mode, "split": args.split, "min_distance": args.min_distance}
    settings["connectivity"] = args.connectivity
    block = getattr(args, "block", None)
    if block is not None and (args.mode != "3d" or block < 1 or args.split or args.labels_out):
        raise SegDashError("--block N (N >= 1) is for --mode 3d, without --split and --labels-out")
    keep = bool(args.labels_out) or (args.mode == "3d" and block is None)  # else: memory flat in depth
    result = measure(ws, args.dataset, source, pixel_size=px, keep_labels=keep, block=block, **settings)
    for line in result.notes:
        notice(line)
    write_table(result, out)
    summary: dict[str, Any] = {
        "dataset": args.dataset,
        "source": source.describe(),
        "mode": args.mode,
        "connectivity": args.connectivity,
        "split": args.split,
        "block": block,
        "slices": len(result.zs),
        "objects": len(result.objects),
        "counts": result.counts(),
        "border": int(result.objects["border"].sum()) if len(result.objects) else 0,
        "pixel_size": None if result.pixel_size is None else list(result.pixel_size),
        "out": str(out.resolve()),
    }
    if labels_out and labels_out.suffix.lower() == ".zarr":
        summary["labels_out"] = str(write_labels_zarr(ws, args.dataset, result, labels_out).resolve())
    elif labels_out:
        summary["labels_out"] = str(Path(write_labels(result, labels_out)).resolve())
    if args.prediction:
        t = trust(ws, args.dataset, args.prediction, **settings)
        for line in t.notes:
            notice(line)
        summary["trust"] = {"part": t.part, "slices": t.zs, "classes": t.rows, "sentence": t.sentence}
    return summary
