"""Commands on the workspace's data: ``import``, ``export``, ``list`` and ``delete`` (no torch)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..errors import SegDashError
from ._common import PLANAR_HINT, file_summary, notice, planar_choice, workspace

__all__ = ["run_import", "run_export", "run_list", "run_delete", "STORED_PREDICTION_FORMATS"]

#: ``export --stored-prediction RUN --format F``: the formats it takes
STORED_PREDICTION_FORMATS = ("zip", "tiff", "prob-tiff", "csv")


def run_import(args: argparse.Namespace) -> dict[str, Any]:
    """``import``: images (and masks) as a new dataset; a question the import asks is refused with
    the option that answers it."""
    from ..data.io import StackOrColourNeeded
    from ..data.masks import GappedMaskValues, ThresholdMergesClasses
    from ..workflow.ingest import ImagesLookLikeMasks, TooManyClassNames, import_dataset

    ws = workspace(args)
    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    hints = {  # a question the import asks, and the option that answers it
        StackOrColourNeeded: PLANAR_HINT,
        GappedMaskValues: " (--remap-classes remaps them)",
        ThresholdMergesClasses: " (--merge-classes confirms the merge)",
        ImagesLookLikeMasks: " (--images-are-binary confirms)",
        TooManyClassNames: " with --classes",
    }
    try:
        report = import_dataset(
            ws,
            args.name,
            args.images,
            args.masks,
            channel=args.channel,
            mask_threshold=args.mask_threshold,
            class_names=classes,
            source=str(args.images),
            as_stack=planar_choice(args),
            remap_classes=args.remap_classes,
            images_are_binary=args.images_are_binary,
            merge_classes=args.merge_classes,
            unlabeled_value=args.unlabeled_value,
            by_reference=args.by_reference,
        )
    except tuple(hints) as exc:
        hint = next(h for cls, h in hints.items() if isinstance(exc, cls))
        raise SegDashError(f"{str(exc).rstrip('.')}{hint}") from None
    for note in report.notices:
        notice(note)
    return report.summary()


def _export_check(args: argparse.Namespace) -> None:
    """Refuse option combinations that do not go together."""
    if args.prediction and args.format != "ome-zarr":
        raise SegDashError("--prediction goes with --format ome-zarr only")
    if args.stored_prediction and args.format not in STORED_PREDICTION_FORMATS:
        raise SegDashError(
            f"--stored-prediction goes with --format {', '.join(STORED_PREDICTION_FORMATS)}"
            " (for ome-zarr: --prediction RUN)"
        )
    if not args.stored_prediction and args.format in ("prob-tiff", "csv"):
        raise SegDashError(f"--format {args.format} exports a stored prediction: add --stored-prediction RUN")


def run_export(args: argparse.Namespace) -> dict[str, Any]:
    """``export``: masks (ZIP, TIFF), the dataset (ZIP, OME-Zarr) or a stored prediction."""
    from ..workflow import export

    _export_check(args)
    ws = workspace(args)
    out = Path(args.out)
    fields: dict[str, Any] = {"dataset": args.dataset, "format": args.format}
    if args.stored_prediction:
        export.export_prediction(ws, args.dataset, args.stored_prediction, args.format, out)
        fields["stored_prediction"] = args.stored_prediction
    elif args.format == "ome-zarr":
        out = export.export_dataset_omezarr(ws, args.dataset, out, prediction=args.prediction)
    elif args.format == "tiff":
        export.export_masks_tiff(ws, args.dataset, out, labeled_only=args.labeled_only)
    else:
        {"zip": export.export_masks_zip, "dataset": export.export_dataset_zip}[args.format](ws, args.dataset, out)
    return file_summary(out, **fields)


def run_list(args: argparse.Namespace) -> dict[str, Any]:
    """``list``: datasets and runs, one line each on standard error, all of it as JSON."""
    from ..workflow.listing import workspace_listing

    listing = workspace_listing(workspace(args))
    for d in listing["datasets"]:
        print(
            f"dataset {d['name']}: {d['slices']} slices {d['shape'][1]}x{d['shape'][2]} {d['dtype']}, "
            f"{d['slices'] - d['unlabeled']} with masks, classes {', '.join(d['classes'])}",
            file=sys.stderr,
        )
    for r in listing["runs"]:
        dice = f", {r['score_text']}"
        hint = (
            f" (resume: python -m core train --dataset {r['dataset']} --resume {r['run_id']})"
            if r["state"] == "interrupted" and r["resumable"] and not r["resumed_by"]
            else ""
        )
        if r["resumed_by"]:
            hint = f" (resumed as {r['resumed_by']})"
        print(
            f"run {r['run_id']} on {r['dataset']}: {r['state']}, epoch {r['epochs_done']}/{r['epochs']}{dice}{hint}",
            file=sys.stderr,
        )
    return listing


def run_delete(args: argparse.Namespace) -> dict[str, Any]:
    """``delete``: a dataset, only with ``--yes`` (else exit 2 saying what would go)."""
    ws = workspace(args)
    what = ws.deletion_summary(args.dataset)
    if not args.yes:
        raise SegDashError(f"{what}. Nothing was deleted: add --yes to delete it")
    ws.delete_dataset(args.dataset)
    return {"deleted": args.dataset, "workspace": str(ws.root)}
