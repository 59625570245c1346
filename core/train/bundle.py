"""A run's reproducibility bundle: ``bundle.zip`` in the run folder (:func:`write_bundle`)."""

from __future__ import annotations

import csv
import importlib.metadata
import io
import json
import platform
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..data.csvcells import safe_row
from ..data.io import atomic_write
from ..errors import SegDashError
from ..nn.archive import check_model_file
from ..store.layout import BUNDLE
from ..store.workspace import Workspace

__all__ = ["write_bundle"]


def _package_versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "platform": platform.platform(), "torch": torch.__version__}
    # from the installed distributions' metadata: importing monai, kornia, ... only for their version took
    # seconds at the end of every run (the Train page waits for the worker to end before it can resume)
    for mod in ("torchvision", "segmentation_models_pytorch", "kornia", "monai", "numpy", "tifffile"):
        try:
            out[mod] = importlib.metadata.version(mod.replace("_", "-"))
        except importlib.metadata.PackageNotFoundError:  # a missing optional package is simply not listed
            continue
    return out


_CSV_COLUMNS = (
    "epoch",
    "train_loss",
    "val_loss",
    "val_dice",
    "val_iou",
    "val_accuracy",
    "val_pixel_error",
    "val_dice_fg",
    "val_iou_fg",
    "lr",
    "images_per_s",
    "time_s",
)


def write_bundle(workspace: Workspace | str | Path, run_id: str) -> Path:
    """Write ``bundle.zip`` in the run folder: everything needed to reproduce or reuse the run.

    Members: ``config.json`` (training config, dataset, dataset version, device, class names,
    normalisation window, resumed_from, ``finish``: the decision tuned on validation and the
    validation and test scores with it), ``metrics.csv`` (one row per epoch, per-class Dice as
    ``val_dice_<class>``), ``model.pt`` (best weights as a SegDash checkpoint without optimizer
    state; :func:`~core.nn.checkpoint.load_checkpoint` reads it), ``splits.json`` (training,
    validation and test slice names and indices, the split's mode and gap, the slices left out
    for the gap), ``versions.json`` (Python and package versions).

    Returns:
        path of the bundle.
    """
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    run = ws.run(run_id)
    if run is None:
        raise SegDashError(f"no run named {run_id!r} in {ws.root}")
    extra = run.get("extra") or {}
    epochs = ws.run_epochs(run_id)
    ckpt_path = next(
        (Path(run[k]) for k in ("best_checkpoint", "last_checkpoint") if run.get(k) and Path(run[k]).is_file()), None
    )
    class_names = list(extra.get("class_names") or [])
    model_bytes = b""
    if ckpt_path is not None:
        check_model_file(ckpt_path)  # its size and ZIP directory first, as for any checkpoint
        obj = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        for key in ("optimizer", "scheduler", "scaler"):
            obj[key] = None
        buf = io.BytesIO()
        torch.save(obj, buf)
        model_bytes = buf.getvalue()
        class_names = class_names or list(obj.get("class_names") or [])
    config = {
        "run_id": run_id,
        "dataset": run["dataset"],
        "dataset_version": run["dataset_version"],
        "state": run["state"],
        "device": run["device"],
        "created": run["created"],
        "wall_time_s": run["wall_time"],
        "best_dice": run["best_dice"],
        "class_names": class_names,
        "norm_window": extra.get("norm_window"),
        "resumed_from": extra.get("resumed_from", ""),
        "checkpoint": ckpt_path.name if ckpt_path else "",
        "train_config": run["config"],
        "finish": extra.get("finish") or {},
    }
    splits = {
        "train": extra.get("train_names", []),
        "val": extra.get("val_names", []),
        "train_z": extra.get("train_slices", []),
        "val_z": extra.get("val_slices", []),
        "test": extra.get("test_names", []),
        "test_z": extra.get("test_slices", []),
        "mode": (extra.get("split") or {}).get("mode", "random"),
        "gap": (extra.get("split") or {}).get("gap", 0),
        "left_out_z": (extra.get("split") or {}).get("left_out", []),
    }
    csv_buf = io.StringIO()
    per_class = [f"val_dice_{c}" for c in class_names]
    writer = csv.writer(csv_buf)
    writer.writerow(safe_row([*_CSV_COLUMNS, *per_class]))  # class names are the user's text
    for e in epochs:
        dice_pc = list(e.get("val_dice_per_class") or [])
        writer.writerow(
            safe_row(
                [e.get(c, "") for c in _CSV_COLUMNS]
                + [dice_pc[i] if i < len(dice_pc) else "" for i in range(len(per_class))]
            )
        )

    def write(fh: Any) -> None:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("config.json", json.dumps(config, indent=2, default=str))
            zf.writestr("metrics.csv", csv_buf.getvalue())
            zf.writestr("splits.json", json.dumps(splits, indent=2))
            zf.writestr("versions.json", json.dumps(_package_versions(), indent=2))
            if model_bytes:
                zf.writestr("model.pt", model_bytes, compress_type=zipfile.ZIP_STORED)

    return atomic_write(ws.run_dir(run_id) / BUNDLE, write)
