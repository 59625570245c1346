"""Checkpoints: a trained network with everything needed to use or resume it.

A checkpoint is a ``torch.save`` of a plain dict (strings, numbers, lists, dicts, tensors), written
atomically and read back with ``torch.load(..., weights_only=True)`` only, so loading a file never
runs code from it. Keys:

``format`` (``"segdash-checkpoint"``), ``format_version``, ``model_config`` (dict of
:class:`~core.nn.model.ModelConfig`), ``model_state`` (state dict), ``class_names``, ``norm_window``
(the intensity window the network was trained with), ``patch_size``, ``epoch`` (epochs completed),
``metrics`` (of that epoch), ``history`` (one dict per epoch), ``run_id``, ``optimizer``,
``scheduler``, ``scaler`` (state dicts or ``None``), ``extra`` (free dict), ``versions``, ``saved_at``;
optional (absent from older files, which load with the defaults): ``decision`` (how probabilities
become labels, :class:`~core.nn.decision.Decision` as a dict, tuned on the validation slices;
default threshold 0.5, plain arg-max, no cleanup) and ``context`` (2.5D: neighbours each side fed as
channels, :mod:`core.data.neighbours`; default 0).

A run's reproducibility ``bundle.zip`` (:func:`core.train.bundle.write_bundle`) holds such a file as
``model.pt``: :func:`load_checkpoint` reads the weights from it; another ZIP is refused with the
names of the checkpoint files inside, if any.

Before predicting, :func:`fit_warnings` compares what the checkpoint knows (class names, intensity
window, training dataset) with the data, so a model used on data it does not fit is flagged
instead of silently producing poor masks.

Example:
    >>> import tempfile, pathlib
    >>> from core.nn.model import ModelConfig, build_model
    >>> cfg = ModelConfig(arch="classic", classic_width=4)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.pt"
    >>> _ = save_checkpoint(path, build_model(cfg), cfg, class_names=["bg", "cell"],
    ...                     norm_window=(0.0, 255.0), patch_size=64, epoch=1, metrics={})
    >>> load_checkpoint(path).class_names
    ('bg', 'cell')
"""

from __future__ import annotations

import math
import pickle
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..data.io import atomic_write
from ..errors import SegDashError
from .archive import bundle_source, check_model_file
from .decision import Decision
from .model import ModelConfig, build_model
from .trained import Checkpoint

__all__ = ["FORMAT", "FORMAT_VERSION", "Checkpoint", "save_checkpoint", "load_checkpoint", "read_checkpoint_info"]

FORMAT = "segdash-checkpoint"
FORMAT_VERSION = 1
_REQUIRED = (
    "format",
    "format_version",
    "model_config",
    "model_state",
    "class_names",
    "norm_window",
    "patch_size",
    "epoch",
)


def _plain(obj: Any) -> Any:
    """Turn numpy scalars/arrays, tuples and paths into types that ``weights_only`` loading accepts."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, str):
        return str(obj)  # also plain-ifies str subclasses such as TorchVersion
    if obj is None or isinstance(obj, (bool, int, float)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint")


def _versions() -> dict[str, str]:
    import segmentation_models_pytorch as smp

    return {
        "torch": str(torch.__version__),
        "segmentation_models_pytorch": str(smp.__version__),
        "numpy": str(np.__version__),
    }


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    model_config: ModelConfig,
    *,
    class_names: Sequence[str],
    norm_window: Sequence[float],
    patch_size: int,
    epoch: int,
    metrics: dict[str, Any],
    optimizer: Any = None,
    scheduler: Any = None,
    scaler: Any = None,
    history: Sequence[dict[str, Any]] | None = None,
    run_id: str = "",
    extra: dict[str, Any] | None = None,
    decision: dict[str, Any] | None = None,
    context: int = 0,
) -> Path:
    """Write a checkpoint atomically (temporary file, fsync, rename).

    Args:
        path: destination file (``.pt``).
        model: the network; its ``state_dict`` is stored on the CPU.
        model_config: the config it was built from.
        class_names: one name per class; must match ``model_config.n_classes``.
        norm_window: ``(lo, hi)`` intensity window used for training.
        patch_size: training patch size.
        epoch: epochs completed.
        metrics: metrics of that epoch (plain values).
        optimizer: optimizer, or its state dict, or ``None``.
        scheduler: scheduler (``state_dict()``) or plain dict, or ``None``.
        scaler: AMP GradScaler or its state dict, or ``None``.
        history: per-epoch metric dicts.
        run_id: the training run.
        extra: any further plain values (train config, slice split, ...).
        decision: :meth:`Decision.to_dict() <core.nn.decision.Decision.to_dict>` (default: threshold 0.5).
        context: 2.5D context of the model's input (neighbours each side).

    Returns:
        the path written.
    """
    if len(class_names) != model_config.n_classes:
        raise SegDashError(f"{len(class_names)} class names for a model of {model_config.n_classes} classes")
    model = getattr(model, "_orig_mod", model)  # torch.compile wrapper
    lo, hi = (float(v) for v in norm_window)
    obj = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_config": model_config.to_dict(),
        "model_state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "class_names": [str(c) for c in class_names],
        "norm_window": [lo, hi],
        "patch_size": int(patch_size),
        "epoch": int(epoch),
        "metrics": _plain(dict(metrics or {})),
        "history": _plain(list(history or [])),
        "run_id": str(run_id),
        "optimizer": _plain(_state_of(optimizer)),
        "scheduler": _plain(_state_of(scheduler)),
        "scaler": _plain(_state_of(scaler)),
        "extra": _plain(dict(extra or {})),
        "decision": Decision.from_dict(decision).to_dict(),
        "context": int(context),
        "versions": _versions(),
        "saved_at": time.time(),
    }
    return atomic_write(path, lambda fh: torch.save(obj, fh))


def _state_of(obj: Any) -> Any:
    if obj is None or isinstance(obj, dict):
        return obj
    return obj.state_dict()


def _read_raw(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SegDashError(f"{path}: no such checkpoint file")
    check_model_file(path)  # its size and ZIP directory, before torch reads a byte of it
    source, name = bundle_source(path) or (path, str(path))
    try:
        obj = torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        why = next((ln.strip() for ln in str(exc).splitlines() if "Unsupported global" in ln), "")
        raise SegDashError(
            f"{name}: not a SegDash checkpoint (it holds Python objects other than plain data "
            f"and tensors; refused for safety) {why[:200]}".rstrip()
        ) from None
    except Exception as exc:  # noqa: BLE001 - torch.load fails in many ways on damaged files (struct.error, ...)
        raise SegDashError(
            f"{name}: cannot read this checkpoint; the file is corrupt, truncated or not a "
            f"PyTorch file ({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})"
        ) from None
    path = Path(name)  # the messages below name the member of a bundle
    if not isinstance(obj, dict):
        raise SegDashError(f"{path}: not a SegDash checkpoint (it holds a {type(obj).__name__}, not a dict)")
    missing = [k for k in _REQUIRED if k not in obj]
    if missing or obj.get("format") != FORMAT:
        raise SegDashError(f"{path}: not a SegDash checkpoint: missing keys {missing or ['format']}")
    if not isinstance(obj["format_version"], int) or obj["format_version"] > FORMAT_VERSION:
        raise SegDashError(
            f"{path}: checkpoint format version {obj['format_version']!r} is newer than this "
            f"SegDash reads ({FORMAT_VERSION}); update SegDash"
        )
    return obj


def read_checkpoint_info(path: str | Path) -> dict[str, Any]:
    """Metadata of a checkpoint without building the network (for listings).

    Returns:
        dict with ``model_config`` (:class:`ModelConfig`), ``class_names``, ``norm_window``,
        ``patch_size``, ``epoch``, ``metrics``, ``history``, ``run_id``, ``extra``, ``decision``
        (:class:`~core.nn.decision.Decision`), ``context``, ``saved_at``.
    """
    path = Path(path)
    from .bioimageio import is_package

    if is_package(path):  # predicts (load_checkpoint), but holds no SegDash checkpoint to resume or list
        raise SegDashError(
            f"{path}: a bioimage.io model package, not a SegDash checkpoint: predict with it, or "
            "resume training from the run's own checkpoint"
        )
    return _info(_read_raw(path), path)


def _info(obj: dict[str, Any], path: Path) -> dict[str, Any]:
    try:
        cfg = ModelConfig.from_dict(obj["model_config"])
    except (ValueError, TypeError) as exc:
        raise SegDashError(f"{path}: invalid model config in checkpoint: {exc}") from None
    try:
        info = {
            "model_config": cfg,
            "class_names": tuple(str(c) for c in obj["class_names"]),
            "norm_window": tuple(float(v) for v in obj["norm_window"]),
            "patch_size": int(obj["patch_size"]),
            "epoch": int(obj["epoch"]),
            "metrics": dict(obj.get("metrics") or {}),
            "history": list(obj.get("history") or []),
            "run_id": str(obj.get("run_id", "")),
            "extra": dict(obj.get("extra") or {}),
            "decision": Decision.from_dict(obj.get("decision")),
            "context": int(obj.get("context") or 0),
            "saved_at": obj.get("saved_at", math.nan),
        }
    except (TypeError, ValueError) as exc:
        raise SegDashError(f"{path}: malformed SegDash checkpoint ({exc})") from None
    if len(info["norm_window"]) != 2:
        raise SegDashError(f"{path}: malformed SegDash checkpoint (norm_window must be (lo, hi))")
    return info


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu", trust_code: bool | None = None) -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint`.

    A bioimage.io model package (``.zip``) exported by SegDash loads too
    (:func:`core.nn.bioimageio.load_package`): its state dict weights, as data, into SegDash's network;
    TorchScript-only packages only with ``trust_code`` (they are programs).

    Args:
        path: the ``.pt`` file (or a SegDash-exported bioimage.io ``.zip``).
        device: where to put the model (``"cpu"``, ``"cuda"``, ``"mps"``...).
        trust_code: run a package's TorchScript weights (default: :func:`core.nn.bioimageio.trusting_code`'s
            setting, off).

    Returns:
        a :class:`Checkpoint` whose model is in eval mode on ``device``.

    Raises:
        ValueError: the file is missing, corrupt, truncated, foreign, or its weights do not fit its
            model config; the message names the file.
    """
    path = Path(path)
    from .bioimageio import is_package, load_package  # a bioimage.io model package exported by SegDash

    if is_package(path):
        return load_package(path, device, trust_code)
    obj = _read_raw(path)
    info = _info(obj, path)
    cfg: ModelConfig = info["model_config"]
    if len(info["class_names"]) != cfg.n_classes:
        raise SegDashError(f"{path}: {len(info['class_names'])} class names for a {cfg.n_classes}-class model")
    # never download pretrained weights to load a checkpoint: the trained weights replace them
    model = build_model(ModelConfig.from_dict({**cfg.to_dict(), "encoder_weights": None}))
    try:
        model.load_state_dict(obj["model_state"])
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise SegDashError(
            f"{path}: the stored weights do not fit the stored model config "
            f"({cfg.describe()}): {str(exc).splitlines()[0][:300]}"
        ) from None
    model.to(device).eval()
    return Checkpoint(
        model=model,
        model_config=cfg,
        class_names=info["class_names"],
        norm_window=info["norm_window"],
        patch_size=info["patch_size"],
        epoch=info["epoch"],
        metrics=info["metrics"],
        history=info["history"],
        run_id=info["run_id"],
        state=obj,
        path=path,
    )
