"""Does a checkpoint fit the data it is asked to predict? :func:`fit_warnings` says, in words, when the
intensities fall outside the window the model was trained with, the bit depth differs, or the
classes or training dataset differ."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..data.intensity import percentile_range
from .checkpoint import Checkpoint

__all__ = ["fit_warnings", "class_warning", "intensity_warning"]


def _window_of(ckpt: Checkpoint | dict[str, Any]) -> tuple[float, float]:
    return tuple(float(v) for v in (ckpt["norm_window"] if isinstance(ckpt, dict) else ckpt.norm_window))


def _classes_of(ckpt: Checkpoint | dict[str, Any]) -> tuple[str, ...]:
    return tuple(ckpt["class_names"] if isinstance(ckpt, dict) else ckpt.class_names)


def class_warning(model_classes: Sequence[str], data_classes: Sequence[str]) -> str | None:
    """A sentence when the model's class names differ from the data's, else ``None``.

    >>> class_warning(["bg", "cell"], ["bg", "cell"]) is None
    True
    >>> class_warning(["bg", "cell"], ["bg", "membrane"])[:40]
    "the model's classes (bg, cell) are not t"
    """
    model_classes, data_classes = [str(c) for c in model_classes], [str(c) for c in data_classes]
    if model_classes == data_classes:
        return None
    m, d = ", ".join(model_classes), ", ".join(data_classes)
    if len(model_classes) != len(data_classes):
        return (
            f"the model predicts {len(model_classes)} classes ({m}); the data has {len(data_classes)} "
            f"({d}): its class indices do not mean the data's classes"
        )
    if sorted(model_classes) == sorted(data_classes):
        return (
            f"the model's classes are in another order ({m}) than the data's ({d}): class index k of the "
            "prediction is not class k of the masks"
        )
    return (
        f"the model's classes ({m}) are not the data's ({d}): it was trained for other structures, or the "
        "classes were named differently; check the predictions before trusting the scores"
    )


def intensity_warning(window: Sequence[float], images: np.ndarray) -> str | None:
    """A sentence when ``images`` do not fit the intensity ``window`` the model was trained with.

    The data's 1-99 % percentiles (:func:`core.data.intensity.percentile_range`, subsampled, so cheap
    on a memory-mapped stack) are mapped through the window as the network's input is: training
    data spans about 0 to 1. Warned when the data lands mostly below 0.25 or above 0.75 (mostly
    black or white to the network), spans less than a quarter of the window (little contrast: an
    8-bit stack on a 16-bit model) or more than 4 windows (clipped: a 16-bit stack on an 8-bit
    model).

    Args:
        window: ``(lo, hi)`` stored in the checkpoint.
        images: (Z, Y, X) or (Y, X) in their stored dtype.
    """
    wlo, whi = (float(v) for v in window)
    span = max(whi - wlo, 1e-12)
    lo, hi = percentile_range(images)
    nlo, nhi = (lo - wlo) / span, (hi - wlo) / span
    dtype = np.dtype(getattr(images, "dtype", np.float32))
    if nhi <= 0.25:
        seen = "a mostly black image"
    elif nlo >= 0.75:
        seen = "a mostly white image"
    elif nhi - nlo < 0.25:
        seen = "an image of little contrast"
    elif nhi - nlo > 4.0:
        seen = "a clipped, saturated image"
    else:
        return None
    hint = ""
    if dtype == np.uint8 and whi > 255 * 1.5:
        hint = " The model was trained on data beyond 8 bits; this input is 8-bit."
    elif np.issubdtype(dtype, np.integer) and whi <= 255 * 1.5 and hi > 255 * 1.5:
        hint = f" The model was trained on 8-bit-range data; this input is {dtype.name} with values up to {hi:g}."
    return (
        f"the input's intensities (1-99 %: {lo:g} to {hi:g}, {dtype.name}) do not fit the window the model "
        f"was trained with ({wlo:g} to {whi:g}): the network sees {seen} (normalised {nlo:.2f} to {nhi:.2f} "
        f"instead of about 0 to 1), so the masks are likely poor.{hint} Rescale the data to the training "
        "data's range, or train on this data."
    )


def fit_warnings(
    ckpt: Checkpoint | dict[str, Any],
    *,
    images: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    dataset: str | None = None,
) -> list[str]:
    """What does not fit between a checkpoint and the data it is about to predict.

    Args:
        ckpt: a :class:`Checkpoint` or :func:`read_checkpoint_info`'s dict.
        images: the data, (Z, Y, X) or (Y, X) in its stored dtype (:func:`intensity_warning`).
        class_names: the data's class names (:func:`class_warning`).
        dataset: the data's dataset name, compared with the one the model was trained on.

    Returns:
        one sentence per mismatch; empty when everything fits.
    """
    out = []
    if class_names is not None:
        out.append(class_warning(_classes_of(ckpt), class_names))
    extra = ckpt.get("extra") or {} if isinstance(ckpt, dict) else ckpt.extra
    trained_on = extra.get("dataset")
    if dataset is not None and trained_on and str(trained_on) != str(dataset):
        out.append(
            f"the model was trained on dataset {trained_on!r}, not on {dataset!r}: fine for more data of "
            "the same kind (same microscope, staining and resolution); otherwise expect poor masks"
        )
    if images is not None:
        out.append(intensity_warning(_window_of(ckpt), images))
    return [w for w in out if w]
