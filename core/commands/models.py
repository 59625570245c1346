"""Commands that train or run a model: ``train``, ``predict``, ``export-model``. Each checks its
input first and imports torch only then, so a refusal answers at once (``train``: its options; the
dataset, labels and resume source by :func:`core.train.source.check_source`, without torch; the
request itself by :func:`core.train.request.check_request`, which calls it)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..data.zrange import parse_slices
from ..errors import SegDashError
from ._common import PLANAR_HINT, notice, planar_choice, progress_printer, workspace

__all__ = ["run_train", "run_predict", "run_export_model", "TrainingFailed"]


class TrainingFailed(Exception):
    """The training job ended in the ``failed`` state; its message is written for the user (exit 1)."""


def _check_train(args: argparse.Namespace) -> dict[str, Any] | None:
    """The options of ``train`` made into the config's overrides: the JSON config file and the split,
    context and time options (the request itself, dataset, labels and resume source included, is
    checked once, by :func:`core.train.request.check_request`). Returns the overrides (or ``None``)."""
    config = None
    if args.config:
        try:
            config = json.loads(Path(args.config).read_text())
        except (OSError, ValueError) as exc:
            raise SegDashError(f"{args.config}: cannot read the JSON config ({exc})") from None
    overrides = {
        key: value
        for key, value in (
            ("val_slices", parse_slices(args.val_slices)),
            ("test_slices", parse_slices(args.test_slices)),
            ("context", args.context),
            ("minutes", args.minutes),
        )
        if value or (key in ("context", "minutes") and value is not None)
    }
    return {**(config or {}), **overrides} if overrides else config


def run_train(args: argparse.Namespace) -> dict[str, Any]:
    """``train``: a run on a dataset's labeled slices, with a progress line; a failed run raises
    :class:`TrainingFailed`."""
    ws = workspace(args)
    config = _check_train(args)
    from ..train.source import check_source  # no torch: the cheap refusals answer at once

    check_source(ws, args.dataset, args.resume)
    from ..train.headless import job_progress, train_headless  # torch: only now that the options are fine

    bar = progress_printer("train", quiet=getattr(args, "quiet", False))

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
        raise TrainingFailed(f"training run {summary.get('run_id')} failed: {why}")
    return summary


def run_predict(args: argparse.Namespace) -> dict[str, Any]:
    """``predict``: a stack to a masks TIFF (and probabilities), warning when the input does not
    fit the checkpoint."""
    for what, path in (("checkpoint", args.checkpoint), ("input", args.input)):  # before torch is imported
        if not Path(path).exists():
            raise SegDashError(f"{path}: no such {what} file or folder")
    if Path(args.checkpoint).is_file():  # its size and ZIP directory, still without torch
        from ..nn.archive import check_model_file

        check_model_file(Path(args.checkpoint))
    if getattr(args, "trust_code", False):  # a package's TorchScript runs only when the user says so
        from ..nn.bioimageio import trusting_code

        with trusting_code(True):
            return _predict(args)
    return _predict(args)


def _predict(args: argparse.Namespace) -> dict[str, Any]:
    from ..data.limits import StackOrColourNeeded

    bar = progress_printer("predict", quiet=getattr(args, "quiet", False))
    options = {k: getattr(args, k) for k in ("tile", "overlap", "batch_size", "tta", "threshold", "channel")}
    options.update(dihedral=args.dihedral, cleanup=not args.no_cleanup)
    zarr_prob = bool(args.prob) and _is_zarr_name(args.prob)
    if _is_zarr_name(args.out):  # chunk by chunk, on every torchrun rank
        if args.prob and not zarr_prob:
            raise SegDashError("with a Zarr --out, --prob must name a .zarr folder too (written chunk by chunk)")
        from ..predict.volume import DEFAULT_BLOCK, predict_volume_headless

        return predict_volume_headless(
            args.checkpoint,
            args.input,
            args.out,
            block=args.block or DEFAULT_BLOCK,
            halo=args.halo,
            as_stack=planar_choice(args),
            prob=args.prob,
            progress=lambda done, total, eta: bar(done, total, eta),
            warn=lambda text: notice(text, "warning"),
            **options,
        )
    if zarr_prob:
        raise SegDashError("--prob NAME.zarr goes with a Zarr output (--out NAME.zarr); for a TIFF --out give PROB.tif")
    if args.block or args.halo is not None:
        raise SegDashError("--block and --halo go with a Zarr output (--out NAME.zarr)")
    from ..predict.stack import predict_headless

    try:
        return predict_headless(
            args.checkpoint,
            args.input,
            args.out,
            prob=args.prob,
            as_stack=planar_choice(args),
            progress=lambda done, total, eta: bar(done, total, eta),
            warn=lambda text: notice(text, "warning"),
            **options,
        )
    except StackOrColourNeeded as exc:
        raise SegDashError(f"{str(exc).rstrip('.')}{PLANAR_HINT}") from None


def _is_zarr_name(path: str) -> bool:
    return str(path).rstrip("/\\").lower().endswith(".zarr")


def run_export_model(args: argparse.Namespace) -> dict[str, Any]:
    """``export-model``: a checkpoint as a bioimage.io package, tested on request."""
    authors = [a.strip() for a in (args.authors or "").split(",") if a.strip()]
    if not authors:  # a package names the people who made it, never the login name of whoever exported it
        raise SegDashError(
            'a bioimage.io model needs its authors: give --authors "First Last,Other Name" (the people who '
            "made the model)"
        )
    from ..workflow.model_export import export_bioimageio

    ws = workspace(args)
    from ..workflow.runs import checkpoint_warning

    warning = checkpoint_warning(ws, args.checkpoint)  # a run stopped before its first validation, a live round
    if warning:
        notice(warning, "warning")
    summary = export_bioimageio(
        args.checkpoint,
        args.out,
        workspace=ws,
        authors=authors,
        maintainers=[m.strip() for m in (args.maintainers or "").split(",") if m.strip()],
        version=args.model_version,
        license=args.license,
        name=args.name,
        onnx=not args.no_onnx,
    )
    if warning:
        summary.setdefault("warnings", []).append(warning)
    if not summary["onnx"] and not args.no_onnx:
        notice(summary["onnx_note"])
    if args.test:
        from ..workflow.model_export import test_package

        result = test_package(summary["out"])
        summary["test"] = result["status"]
        if result["status"] != "passed":
            raise RuntimeError(
                f"bioimageio.core test_model did not pass ({result['status']}): " + "; ".join(result["failed"])[:600]
            )
    return summary
