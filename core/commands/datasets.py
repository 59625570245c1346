"""Commands on the workspace's data: ``import``, ``export``, ``list``, ``delete`` and ``repair`` (no torch,
but for ``repair`` reading the checkpoints of runs the catalog lost)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..errors import SegDashError
from ._common import PLANAR_HINT, SINGLETON_HINT, file_summary, notice, planar_choice, stage_progress, workspace

__all__ = [
    "run_import",
    "run_export",
    "run_list",
    "run_delete",
    "run_repair",
    "REPAIR_PARSER",
    "FROM_BACKUP_HELP",
    "STORED_PREDICTION_FORMATS",
]

#: the ``repair`` parser's texts (core/cli.py builds it)
REPAIR_PARSER = {
    "help": "rebuild the catalog from the dataset and run folders",
    "description": "Rebuild the workspace's catalog (catalog.sqlite) from its folders after it was lost, emptied, "
    "its WAL deleted or its file damaged: datasets (images, dataset.json, every mask version and its "
    "provenance) and training runs (from their checkpoints). Only adds what is missing; a damaged catalog is "
    "moved aside (catalog.sqlite.corrupt-<time>), never deleted; no dataset or run file is changed. Lists "
    "what it recovered, what it could not, and the catalog copies in backups/.",
}
FROM_BACKUP_HELP = (
    "start from this catalog copy (backups/catalog-<time>.sqlite; the current catalog is moved aside as "
    "catalog.sqlite.replaced-<time>), then add what the folders hold beyond it"
)

#: ``export --stored-prediction RUN --format F``: the formats it takes
STORED_PREDICTION_FORMATS = ("zip", "tiff", "prob-tiff", "csv")


def run_import(args: argparse.Namespace) -> dict[str, Any]:
    """``import``: images (and masks) as a new dataset; a question the import asks is refused with
    the option that answers it."""
    from ..data.io import SeriesChoiceNeeded, SingletonAxisNeeded, StackOrColourNeeded
    from ..data.masks import GappedMaskValues, ThresholdMergesClasses
    from ..workflow.ingest import ImagesLookLikeMasks, TooManyClassNames, import_dataset
    from ..workflow.measure import parse_pixel_size, set_pixel_size

    px = parse_pixel_size(args.pixel_size) if getattr(args, "pixel_size", None) else None
    ws = workspace(args)
    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    hints = {  # a question the import asks, and the option that answers it
        SingletonAxisNeeded: SINGLETON_HINT,  # before StackOrColourNeeded, its base
        StackOrColourNeeded: PLANAR_HINT,
        SeriesChoiceNeeded: " with --series N",
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
            progress=stage_progress("import", quiet=getattr(args, "quiet", False)),
            series=args.series,
        )
    except tuple(hints) as exc:
        hint = next(h for cls, h in hints.items() if isinstance(exc, cls))
        raise SegDashError(f"{str(exc).rstrip('.')}{hint}") from None
    if px is not None:
        px = set_pixel_size(ws, args.name, px)
        report.notices.append(f"pixel size {px.describe()} set by --pixel-size")
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
    ws = workspace(args, writes=False)
    out = Path(args.out)
    fields: dict[str, Any] = {"dataset": args.dataset, "format": args.format}
    if args.stored_prediction:
        export.export_prediction(ws, args.dataset, args.stored_prediction, args.format, out)
        fields["stored_prediction"] = args.stored_prediction
    elif args.format == "ome-zarr":
        progress = stage_progress("export", quiet=getattr(args, "quiet", False))
        out = export.export_dataset_omezarr(ws, args.dataset, out, prediction=args.prediction, progress=progress)
    elif args.format == "tiff":
        export.export_masks_tiff(ws, args.dataset, out, labeled_only=args.labeled_only)
    else:
        {"zip": export.export_masks_zip, "dataset": export.export_dataset_zip}[args.format](ws, args.dataset, out)
    return file_summary(out, **fields)


def run_list(args: argparse.Namespace) -> dict[str, Any]:
    """``list``: datasets and runs, one line each on standard error, all of it as JSON."""
    from ..workflow.listing import workspace_listing

    listing = workspace_listing(workspace(args, writes=False))
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


def run_repair(args: argparse.Namespace) -> dict[str, Any]:
    """``repair``: the catalog rebuilt from the folders; one line on standard error for each thing
    recovered or not, the report as JSON."""
    from ..workflow.repair import repair_workspace

    report = repair_workspace(args.workspace, from_backup=args.from_backup)
    notice(f"catalog {report['catalog']}")
    for d in report["details"]:
        what = f"{d['slices']} slices, " if "slices" in d else ""
        notes = f" ({'; '.join(d['notes'])})" if d["notes"] else ""
        notice(f"recovered dataset {d['dataset']}: {what}{d['mask_versions']} mask versions{notes}")
    for run in report["runs"]:
        notice(f"recovered run {run}")
    for item in report["not_recovered"]:
        notice(f"not recovered: {item['path']}: {item['why']}", "warning")
    if not report["details"] and not report["runs"]:
        notice("the catalog lists everything the folders hold: nothing to recover")
    if report["backups"]:
        names = ", ".join(Path(b).name for b in report["backups"][:3]) + (" ..." if len(report["backups"]) > 3 else "")
        notice(
            f"catalog copies in backups/ (newest first): {names}; "
            f"python -m core repair --from-backup {report['backups'][0]} starts from the newest"
        )
    return report
