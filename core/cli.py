"""The headless command line: ``python -m core import|export|export-model|train|predict|list|delete``.

A public interface: options, exit codes and the last line of output are relied on by scripts.

- Exit 0 on success, with a one-line JSON summary as the last line of standard output.
- Exit 2 on refused input (bad file, unknown dataset, shapes that do not match ...), with one line
  ``error: <message>`` on standard error and no traceback (set ``SEGDASH_DEBUG=1`` to see one).
- Exit 1 on an unexpected internal error, also as one line; 130 when interrupted.
- Every command takes ``--workspace DIR`` (default ``$SEGDASH_WORKSPACE`` or ``./workspace``). A
  new, empty workspace first receives the bundled sample as dataset ``isbi2012``.
- torch is imported only by the commands that run a model, and only once their input has been
  checked: a refusal (unknown dataset, missing file) answers at once, not after seconds of imports.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from .errors import SegDashError

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_INTERNAL, EXIT_REFUSED, EXIT_INTERRUPTED = 0, 1, 2, 130


def _workspace(args: argparse.Namespace):
    from .store.workspace import Workspace
    from .workflow.sample import ensure_sample

    ws = Workspace(args.workspace)
    ensure_sample(ws)
    return ws


def _progress_printer(label: str) -> Callable[[float, float, float | None, str], None]:
    """A progress line on standard error: ``label [#####     ] 12/30 ETA 4s``."""
    tty = sys.stderr.isatty()
    last = [0.0]

    def show(done: float, total: float, eta_s: float | None = None, extra: str = "") -> None:
        now = time.monotonic()
        if not tty and now - last[0] < 2.0 and done < total:
            return
        last[0] = now
        frac = 0.0 if total <= 0 else min(1.0, done / total)
        bar = "#" * int(frac * 30)
        eta = f" ETA {eta_s:.0f}s" if eta_s is not None else ""
        line = f"{label} [{bar:<30}] {done:g}/{total:g}{eta} {extra}".rstrip()
        sys.stderr.write(("\r" + line) if tty else (line + "\n"))
        if tty and done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _cmd_import(args: argparse.Namespace) -> dict[str, Any]:
    from .data.io import StackOrColourNeeded
    from .data.masks import GappedMaskValues, ThresholdMergesClasses
    from .workflow.ingest import ImagesLookLikeMasks, TooManyClassNames, import_dataset

    ws = _workspace(args)
    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    as_stack = _planar_choice(args)
    hints = {  # a question the import asks, and the option that answers it
        StackOrColourNeeded: _PLANAR_HINT,
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
            as_stack=as_stack,
            remap_classes=args.remap_classes,
            images_are_binary=args.images_are_binary,
            merge_classes=args.merge_classes,
            unlabeled_value=args.unlabeled_value,
        )
    except tuple(hints) as exc:
        hint = next(h for cls, h in hints.items() if isinstance(exc, cls))
        raise SegDashError(f"{str(exc).rstrip('.')}{hint}") from None
    for note in report.notices:
        print(f"notice: {note}", file=sys.stderr)
    return report.summary()


def _cmd_export(args: argparse.Namespace) -> dict[str, Any]:
    from .workflow import export

    ws = _workspace(args)
    if args.prediction and args.format != "ome-zarr":
        raise SegDashError("--prediction goes with --format ome-zarr only")
    if args.format == "ome-zarr":
        from .workflow.export import export_dataset_omezarr

        out = export_dataset_omezarr(ws, args.dataset, Path(args.out), prediction=args.prediction)
        size = out.stat().st_size if out.is_file() else sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        return {"dataset": args.dataset, "format": args.format, "out": str(out.resolve()), "bytes": size}
    fn = {"zip": export.export_masks_zip, "tiff": export.export_masks_tiff, "dataset": export.export_dataset_zip}[
        args.format
    ]
    if args.format == "tiff":
        fn(ws, args.dataset, Path(args.out), labeled_only=args.labeled_only)
    else:
        fn(ws, args.dataset, Path(args.out))
    return {
        "dataset": args.dataset,
        "format": args.format,
        "out": str(Path(args.out).resolve()),
        "bytes": Path(args.out).stat().st_size,
    }


def _check_train(ws: Any, args: argparse.Namespace) -> dict[str, Any] | None:
    """Refusals of ``train`` that need no model (so no torch): the dataset, its masks, the config
    file, the run to resume. Returns the JSON config (or ``None``)."""
    ws.dataset(args.dataset)
    if not ws.labeled_slices(args.dataset):
        raise SegDashError(f"dataset {args.dataset!r} has no labeled slices; label at least one slice first")
    config = None
    if args.config:
        try:
            config = json.loads(Path(args.config).read_text())
        except (OSError, ValueError) as exc:
            raise SegDashError(f"{args.config}: cannot read the JSON config ({exc})") from None
    if args.resume and "/" not in args.resume and "\\" not in args.resume:
        run = ws.catalog.run(args.resume)
        if run is None and not Path(args.resume).is_file():
            known = ", ".join(r["run_id"] for r in ws.catalog.runs()[:5]) or "none"
            raise SegDashError(
                f"cannot resume from {args.resume!r}: no run of that name in {ws.root} (latest runs: {known})"
            )
    elif args.resume and not Path(args.resume).is_file():
        raise SegDashError(f"cannot resume from {args.resume!r}: no such checkpoint file")
    return config


class _TrainingFailed(Exception):
    """The training job ended in the ``failed`` state; its message is written for the user."""


def _cmd_train(args: argparse.Namespace) -> dict[str, Any]:
    ws = _workspace(args)
    config = _check_train(ws, args)
    from .train.headless import job_progress, train_headless  # torch: only now that the input is fine

    bar = _progress_printer("train")

    def progress(snap: dict[str, Any]) -> None:
        done, total = job_progress(snap)
        hist = snap.get("history") or []
        extra = f"epoch {snap.get('epoch')}/{snap.get('epochs')}"
        if hist:
            extra += f" val_dice {hist[-1].get('val_dice', float('nan')):.4f}"
        bar(done, total, snap.get("eta_s"), extra)

    summary = train_headless(ws, args.dataset, epochs=args.epochs, config=config, resume=args.resume, progress=progress)
    if summary.get("state") == "failed":
        why = summary.get("error") or "no reason given"
        raise _TrainingFailed(f"training run {summary.get('run_id')} failed: {why}")
    return summary


def _cmd_predict(args: argparse.Namespace) -> dict[str, Any]:
    for what, path in (("checkpoint", args.checkpoint), ("input", args.input)):  # before torch is imported
        if not Path(path).exists():
            raise SegDashError(f"{path}: no such {what} file or folder")
    from .data.limits import StackOrColourNeeded
    from .predict.stack import predict_headless

    bar = _progress_printer("predict")
    try:
        return predict_headless(
            args.checkpoint,
            args.input,
            args.out,
            prob=args.prob,
            tile=args.tile,
            overlap=args.overlap,
            batch_size=args.batch_size,
            tta=args.tta,
            threshold=args.threshold,
            channel=args.channel,
            as_stack=_planar_choice(args),
            progress=lambda done, total, eta: bar(done, total, eta),
            warn=lambda text: print(f"warning: {text}", file=sys.stderr, flush=True),
        )
    except StackOrColourNeeded as exc:
        raise SegDashError(f"{str(exc).rstrip('.')}{_PLANAR_HINT}") from None


def _cmd_export_model(args: argparse.Namespace) -> dict[str, Any]:
    from .workflow.model_export import export_bioimageio

    ws = _workspace(args)
    authors = [a.strip() for a in (args.authors or "").split(",") if a.strip()]
    if not authors:
        import getpass

        authors = [getpass.getuser()]
        print(f"notice: no --authors given: the package names {authors[0]!r} as its author", file=sys.stderr)
    summary = export_bioimageio(
        args.checkpoint,
        args.out,
        workspace=ws,
        authors=authors,
        license=args.license,
        name=args.name,
        onnx=not args.no_onnx,
    )
    if not summary["onnx"] and not args.no_onnx:
        print(f"notice: {summary['onnx_note']}", file=sys.stderr)
    if args.test:
        from .workflow.model_export import test_package

        result = test_package(summary["out"])
        summary["test"] = result["status"]
        if result["status"] != "passed":
            raise RuntimeError(
                f"bioimageio.core test_model did not pass ({result['status']}): " + "; ".join(result["failed"])[:600]
            )
    return summary


def _cmd_list(args: argparse.Namespace) -> dict[str, Any]:
    from .workflow.listing import workspace_listing

    listing = workspace_listing(_workspace(args))
    datasets, runs = listing["datasets"], listing["runs"]
    for d in datasets:
        print(
            f"dataset {d['name']}: {d['slices']} slices {d['shape'][1]}x{d['shape'][2]} {d['dtype']}, "
            f"{d['slices'] - d['unlabeled']} with masks, classes {', '.join(d['classes'])}",
            file=sys.stderr,
        )
    for r in runs:
        dice = "" if r["best_dice"] is None else f", best Dice {r['best_dice']:.4f}"
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


def _cmd_delete(args: argparse.Namespace) -> dict[str, Any]:
    ws = _workspace(args)
    what = ws.deletion_summary(args.dataset)
    if not args.yes:
        raise SegDashError(f"{what}. Nothing was deleted: add --yes to delete it")
    ws.delete_dataset(args.dataset)
    return {"deleted": args.dataset, "workspace": str(ws.root)}


def _add_planar_choice(p: argparse.ArgumentParser) -> None:
    """``--as-stack`` / ``--as-colour``: how to read a 3- or 4-plane TIFF stored as planar RGB."""
    reading = p.add_mutually_exclusive_group()
    reading.add_argument(
        "--as-stack", action="store_true", help="read a 3- or 4-plane TIFF stored as planar RGB as that many slices"
    )
    reading.add_argument(
        "--as-colour",
        action="store_true",
        help="read a 3- or 4-plane TIFF stored as planar RGB as one colour image (to gray)",
    )


def _planar_choice(args: argparse.Namespace) -> bool | None:
    return True if args.as_stack else (False if args.as_colour else None)


_PLANAR_HINT = ": --as-stack for slices, --as-colour for one colour image"


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--workspace", metavar="DIR", default=None, help="workspace folder (default: $SEGDASH_WORKSPACE or ./workspace)"
    )
    parser = argparse.ArgumentParser(
        prog="python -m core",
        description="SegDash headless: import, export, train and predict.",
        epilog="Exit status: 0 ok, 2 refused input, 1 internal error. The last line of output is JSON.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "import",
        parents=[common],
        help="import images (and masks) as a dataset",
        description="Import a TIFF stack, an image file, a ZIP or a folder as a new dataset.",
    )
    p.add_argument("--name", required=True, help="new dataset name (letters, digits, . _ -)")
    p.add_argument("--images", required=True, metavar="PATH", help="TIFF stack, image file, ZIP or folder")
    p.add_argument("--masks", metavar="PATH", help="masks in the same forms, paired by slice or file name")
    p.add_argument("--channel", type=int, help="channel to keep for multi-channel images")
    p.add_argument(
        "--mask-threshold", type=float, metavar="T", help="binarise masks at T (for anti-aliased or JPEG masks)"
    )
    p.add_argument("--classes", metavar="A,B,...", help="class names, comma separated (index order)")
    _add_planar_choice(p)
    p.add_argument(
        "--remap-classes",
        action="store_true",
        help="map mask values with gaps (e.g. 0,1,2,7) to classes 0..K-1 in sorted order",
    )
    p.add_argument(
        "--merge-classes",
        action="store_true",
        help="let --mask-threshold merge masks of several classes into one foreground class",
    )
    p.add_argument(
        "--unlabeled-value",
        type=float,
        metavar="V",
        help="mask pixels equal to V are not labeled (sparse labels, e.g. from napari or ilastik); "
        "stored and exported as 255",
    )
    p.add_argument(
        "--images-are-binary",
        action="store_true",
        help="import images that hold only two values (refused by default: they look like masks)",
    )
    p.set_defaults(func=_cmd_import)

    p = sub.add_parser(
        "export",
        parents=[common],
        help="export a dataset's masks",
        description="Export masks as a ZIP of PNGs named like their slices, a multipage "
        "TIFF, or the whole dataset as a re-importable ZIP.",
    )
    p.add_argument("--dataset", required=True)
    p.add_argument(
        "--format",
        choices=["zip", "tiff", "dataset", "ome-zarr"],
        default="zip",
        help="tiff: an ImageJ stack with one page per image slice (unlabeled slices empty), "
        "slice names as its labels, so it lies on the image stack in Fiji; ome-zarr: images + "
        "masks as labels (a .zarr folder, or a ZIP of one if FILE ends in .zip)",
    )
    p.add_argument("--out", required=True, metavar="FILE")
    p.add_argument(
        "--labeled-only",
        action="store_true",
        help="tiff: write only the labeled slices (pages then do not line up with the images)",
    )
    p.add_argument("--prediction", metavar="RUN", help="ome-zarr: add this stored prediction as a second labels image")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser(
        "train",
        parents=[common],
        help="train a model on a dataset",
        description="Train on the labeled slices of a dataset; checkpoints go to the workspace.",
    )
    p.add_argument("--dataset", required=True)
    p.add_argument("--epochs", type=int, help="number of epochs (default from the config)")
    p.add_argument("--config", metavar="FILE", help="JSON training config (partial: defaults + overrides)")
    p.add_argument("--resume", metavar="RUN", help="resume from this run's last checkpoint")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "predict",
        parents=[common],
        help="predict masks for a stack",
        description="Tiled prediction of a stack with a checkpoint, written slice by slice. "
        "When the input does not fit the checkpoint (its intensities lie outside "
        "the window the model was trained with, another bit depth), a 'warning: "
        "...' line goes to standard error and the JSON lists it under warnings; "
        "the exit status stays 0.",
    )
    p.add_argument(
        "--checkpoint",
        required=True,
        metavar="FILE",
        help="a run's best.pt / last.pt, or its bundle.zip (the weights inside are read)",
    )
    p.add_argument("--input", required=True, metavar="STACK", help="TIFF stack, image file, ZIP or folder")
    p.add_argument("--out", required=True, metavar="MASKS.tif")
    p.add_argument("--prob", metavar="PROB.tif", help="also write probabilities here")
    p.add_argument("--tile", type=int, help="tile size (default: the checkpoint's patch size)")
    p.add_argument("--overlap", type=float, default=0.25, help="tile overlap fraction (default 0.25)")
    p.add_argument("--batch-size", type=int, default=4, help="tiles per forward pass")
    p.add_argument("--tta", action="store_true", help="average over flips (4x the time)")
    p.add_argument("--threshold", type=float, default=0.5, help="probability threshold for binary models")
    p.add_argument("--channel", type=int, help="channel to keep for multi-channel input")
    _add_planar_choice(p)
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser(
        "export-model",
        parents=[common],
        help="export a checkpoint as a bioimage.io model",
        description="Write a checkpoint as a bioimage.io model package (ZIP: rdf.yaml, TorchScript "
        "and ONNX weights, test tensors from the training data, cover) that Fiji "
        "(deepImageJ), ilastik, napari and BiaPy run; python -m core predict reads "
        "it back. The workspace must hold the training dataset (test input).",
    )
    p.add_argument("--checkpoint", required=True, metavar="FILE", help="SegDash checkpoint (best.pt, last.pt)")
    p.add_argument("--format", choices=["bioimageio"], default="bioimageio")
    p.add_argument("--out", required=True, metavar="MODEL.zip")
    p.add_argument("--authors", metavar="A,B,...", help="author names, comma separated (default: your login name)")
    p.add_argument("--license", default="CC-BY-4.0", help="SPDX licence identifier (default CC-BY-4.0)")
    p.add_argument("--name", help="model name (default: SegDash <dataset> <run>)")
    p.add_argument("--no-onnx", action="store_true", help="TorchScript weights only")
    p.add_argument(
        "--test",
        action="store_true",
        help="run bioimageio.core's test_model on the package (offline) and fail if it does not pass",
    )
    p.set_defaults(func=_cmd_export_model)

    p = sub.add_parser("list", parents=[common], help="list datasets and runs (with their state)")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser(
        "delete",
        parents=[common],
        help="delete a dataset (asks for --yes)",
        description="Delete a dataset: its images and every mask version. Training runs and "
        "their checkpoints are kept. Without --yes nothing is deleted (exit 2).",
    )
    p.add_argument("--dataset", required=True)
    p.add_argument("--yes", action="store_true", help="really delete")
    p.set_defaults(func=_cmd_delete)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = bool(os.environ.get("SEGDASH_DEBUG"))
    try:
        summary = args.func(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _TrainingFailed as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_INTERNAL
    except SegDashError as exc:  # a user's mistake; a plain ValueError (numpy, torch) is an internal error
        if debug:
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_REFUSED
    except OSError as exc:
        if debug:
            raise
        if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            from .store.workspace import human_bytes

            where = Path(exc.filename).parent if exc.filename else Path.cwd()
            print(
                f"error: not enough space to write {exc.filename or 'a file'}: "
                f"{human_bytes(shutil.disk_usage(where).free)} free there",
                file=sys.stderr,
            )
            return EXIT_REFUSED
        print(f"error: {type(exc).__name__}: {_one_line(exc)} (set SEGDASH_DEBUG=1 for a traceback)", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as exc:  # noqa: BLE001 - the CLI promises one line, not a traceback
        if debug:
            raise
        print(f"error: {type(exc).__name__}: {_one_line(exc)} (set SEGDASH_DEBUG=1 for a traceback)", file=sys.stderr)
        return EXIT_INTERNAL
    print(json.dumps(summary, default=str))
    return EXIT_OK


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
