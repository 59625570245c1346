"""What a bioimage.io model package holds besides its weights and description: the test input (a
crop of the training data), the cover image, the README and the SegDash configurations. Used by
:func:`core.workflow.model_export.export_bioimageio`; numpy only.
"""

from __future__ import annotations

import datetime as _dt
import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import SegDashError

if TYPE_CHECKING:  # numpy only at run time
    from ..nn.checkpoint import Checkpoint

__all__ = ["input_crop", "cover_image", "readme_text", "segdash_config", "bundle_config", "TEST_SIDE"]

TEST_SIDE = 128  # test tensors: a crop of about this side, enough to see structure, fast to test


def input_crop(ckpt: Checkpoint, workspace: Any, multiple: int, min_side: int = 0) -> tuple[np.ndarray, str, Any]:
    """A (S, S) crop of a training slice (validation slice first), S a multiple of ``multiple`` and at
    least ``min_side``; its description; the workspace."""
    from ..store.workspace import Workspace

    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    dataset = str(ckpt.extra.get("dataset") or "")
    if not dataset or not ws.has_dataset(dataset):
        where = f"dataset {dataset!r}" if dataset else "a dataset the checkpoint does not name"
        raise SegDashError(
            f"{ckpt.path}: the test input is cut from the training data, but the model was trained on "
            f"{where}, which is not in the workspace {ws.root}; export from the workspace it was "
            "trained in (--workspace)"
        )
    zs = [int(z) for z in (ckpt.extra.get("val_slices") or []) + (ckpt.extra.get("train_slices") or [])]
    n = ws.dataset(dataset).shape[0]
    z = next((z for z in zs if 0 <= z < n), 0)
    image = np.asarray(ws.read_slice(dataset, z))
    side = max(multiple, min_side, (TEST_SIDE // multiple) * multiple)
    h, w = image.shape[-2:]
    if h < side or w < side:  # small slices: the largest multiple that fits, or reflect-padded up to one
        side = max(multiple, min_side, (min(h, w) // multiple) * multiple)
        if h < side or w < side:
            image = np.pad(image, ((0, max(0, side - h)), (0, max(0, side - w))), mode="reflect")
            h, w = image.shape
    y0, x0 = (h - side) // 2, (w - side) // 2
    return np.ascontiguousarray(image[y0 : y0 + side, x0 : x0 + side]), f"{dataset} slice {z}", ws


def cover_image(image: np.ndarray, probs: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """(S, 2S, 3) uint8: the image, and the image with the predicted classes tinted (2:1, as bioimage.io asks)."""
    from ..data.intensity import to_uint8

    gray = to_uint8(image, window)
    labels = probs.argmax(axis=0)
    palette = np.array(
        [[0, 0, 0], [255, 60, 60], [60, 200, 255], [255, 210, 0], [120, 255, 120], [220, 90, 255]], np.float32
    )
    rgb = np.repeat(gray[..., None], 3, axis=2).astype(np.float32)
    colour = palette[1 + (labels - 1) % (len(palette) - 1)]
    fg = labels > 0
    rgb[fg] = 0.5 * rgb[fg] + 0.5 * colour[fg]
    left = np.repeat(gray[..., None], 3, axis=2)
    return np.concatenate([left, rgb.astype(np.uint8)], axis=1)


def readme_text(
    name: str, ckpt: Checkpoint, dataset_label: str, lo: float, hi: float, multiple: int, onnx_note: str, halo: int
) -> str:
    classes = ", ".join(f"{i} = {c}" for i, c in enumerate(ckpt.class_names))
    metrics = {k: v for k, v in (ckpt.metrics or {}).items() if isinstance(v, (int, float))}
    dice = metrics.get("val_dice")
    d = ckpt.decision  # tuned on the run's validation slices (0.5, plain arg-max and no cleanup if not tuned)
    if ckpt.n_classes == 2:
        two_class = f"; for this two-class model, foreground is `P({ckpt.class_names[1]}) > {d.threshold:g}`"
    elif d.class_weights:
        weights = ", ".join(f"{w:g}" for w in d.class_weights)
        two_class = f" of the probabilities multiplied by the class weights ({weights})"
    else:
        two_class = ""
    if d.min_size or d.hole_size:
        two_class += (
            f". Then objects (8-connected components of each class but 0) smaller than {d.min_size} pixels "
            f"become class 0 and holes (components of class 0 not touching the border) smaller than "
            f"{d.hole_size} pixels take the class around them"
        )
    return f"""# {name}

A {ckpt.model_config.describe()} trained in SegDash (run `{ckpt.run_id}`, {ckpt.epoch} epochs) on the
dataset `{ckpt.extra.get("dataset", "?")}` for semantic segmentation into {ckpt.n_classes} classes: {classes}.

## Input

One grayscale channel, axes `b, c, y, x`; height and width are multiples of {multiple} (at least
{multiple + 2 * halo}). Raw intensities are normalised with the fixed window used in training (the 1-99 % percentile
range of the training dataset): `x = clip((raw - {lo:g}) / ({hi:g} - {lo:g}), 0, 1)`. Consumers apply this from
the `preprocessing` of `rdf.yaml` (`scale_linear`, then `clip`).

## Output

`probabilities`: one channel per class (axes `b, c, y, x`), summing to 1.

## From probabilities to labels (the tuned decision)

The label image is the arg-max over channels{two_class}. This decision was tuned on the run's
validation slices; it is stored in `rdf.yaml` under `config.segdash.decision` (`threshold`,
`class_weights`, `min_size`, `hole_size`), and `python -m core predict --checkpoint` this package
applies exactly it, as it does for the checkpoint, so both give the same masks.

## Tiles

The output declares a halo of {halo} pixels on `y` and `x`: a tiled consumer (bioimageio.core with a
block size, deepImageJ's tiling) pads each block's input by it and crops it from the output, so the
tiles join without seams (SegDash itself blends overlapping tiles).

## Weights

`pytorch_state_dict` (the original: `SegDashUNet` in `segdash_unet.py`, SegDash's own network; smp
networks also need `segmentation-models-pytorch`), TorchScript (traced from it). {onnx_note}
Loading the package with `bioimageio.core==0.11.0` needs `pydantic<2.14` (with pydantic 2.14,
`load_model_description` fails): `pip install bioimageio.core==0.11.0 "pydantic<2.14"`.

## Validation

Validation Dice of the exported checkpoint on held-out slices of the training dataset:
{f"{dice:.4f}" if isinstance(dice, float) else "not recorded"}. The test input is a crop of {dataset_label}; its
expected output was computed by these weights. `segdash_config.json` holds the training run's
configuration (reproducibility bundle), so the training can be repeated in SegDash.
"""


def segdash_config(ckpt: Checkpoint, multiple: int) -> dict[str, Any]:
    metrics = {
        k: v
        for k, v in (ckpt.metrics or {}).items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
    }
    return {
        "format": "segdash-bioimageio",
        "format_version": 1,
        "model_config": ckpt.model_config.to_dict(),
        "class_names": list(ckpt.class_names),
        "norm_window": [float(v) for v in ckpt.norm_window],
        "patch_size": int(ckpt.patch_size),
        "run_id": ckpt.run_id,
        "epoch": int(ckpt.epoch),
        "training_dataset": str(ckpt.extra.get("dataset", "")),
        "dataset_version": str(ckpt.extra.get("dataset_version", "")),
        "metrics": metrics,
        "input_multiple": multiple,
        "decision": ckpt.decision.to_dict(),
        "output": "probabilities",
        "exported_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def bundle_config(ckpt: Checkpoint) -> dict[str, Any]:
    """The run's reproducibility config: ``config.json`` of its ``bundle.zip`` when there is one, else
    the same facts from the checkpoint."""
    if ckpt.path is not None:
        bundle = Path(ckpt.path).with_name("bundle.zip")
        if bundle.is_file():
            from ..nn.archive import TEXT_MAX_BYTES, read_member  # torch-free: sizes checked before reading

            try:
                with zipfile.ZipFile(bundle) as zf:
                    return json.loads(read_member(zf, "config.json", str(bundle), TEXT_MAX_BYTES))
            except (OSError, KeyError, ValueError, zipfile.BadZipFile):
                pass
    extra = ckpt.extra
    return {
        "run_id": ckpt.run_id,
        "dataset": extra.get("dataset", ""),
        "dataset_version": extra.get("dataset_version", ""),
        "class_names": list(ckpt.class_names),
        "norm_window": list(ckpt.norm_window),
        "train_config": extra.get("train_config", {}),
        "train_slices": extra.get("train_names", []),
        "val_slices": extra.get("val_names", []),
        "epoch": ckpt.epoch,
    }
