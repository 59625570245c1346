"""What a failed training run tells the user: a full disk and a GPU out of memory in words they can
act on (:func:`failure_message`), any other error as itself."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from ..data.files import is_disk_full
from ..errors import SegDashError
from ..store.workspace import disk_full_error
from .config import TrainConfig

__all__ = ["failure_message", "is_disk_full_error"]


def is_disk_full_error(exc: BaseException, folder: Path) -> bool:
    """``exc`` comes from a full disk: ENOSPC, or torch's ``inline_container`` write failure (which
    does not keep the errno) while the folder has little space left."""
    if is_disk_full(exc) or (isinstance(exc, ValueError) and str(exc).startswith("not enough space")):
        return True
    text = str(exc).lower()
    if isinstance(exc, RuntimeError) and (
        "write failed" in text or "inline_container" in text or "unexpected pos" in text
    ):
        try:
            return shutil.disk_usage(folder).free < 64 << 20
        except OSError:
            return False
    return False


def failure_message(exc: BaseException, cfg: TrainConfig, folder: Path | None = None) -> str:
    """The message a run that failed with ``exc`` shows: a full disk (of ``folder``) and a GPU out of
    memory (with ``cfg``'s batch and patch sizes to lower) in words, SegDash's own errors as they are."""
    if folder is not None and is_disk_full_error(exc, folder):
        if str(exc).startswith("not enough space"):
            return str(exc)
        return f"{disk_full_error(folder)} (a checkpoint of this run could not be saved)"
    text = f"{type(exc).__name__}: {exc}".strip()
    oom = isinstance(exc, getattr(torch.cuda, "OutOfMemoryError", ())) or "out of memory" in text.lower()
    if oom:
        return (
            f"the GPU ran out of memory: lower the batch size (now {cfg.batch_size}) or the patch size "
            f"(now {cfg.patch_size}). ({text.splitlines()[0][:300]})"
        )
    if isinstance(exc, SegDashError) and str(exc):
        return str(exc)  # our own messages are written for the user already
    return text
