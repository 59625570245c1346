"""A checked request turned into what the loop trains on: :func:`prepare_run` (the split, the
normalisation window, the tensors), apart from the thread or process that runs it
(:class:`~core.train.job.TrainingJob` calls it in its worker). The images are read once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..data.intensity import percentile_range
from ..data.zrange import format_slices
from ..nn.checkpoint import Checkpoint, load_checkpoint
from ..nn.model import required_multiple
from ..store.workspace import Workspace
from .data import Split, context_images, pad_to, split_for, validation_tensors
from .loop import TrainingData
from .request import TrainingRequest

__all__ = ["PreparedRun", "prepare_run"]


@dataclass
class PreparedRun:
    """What :func:`prepare_run` made of a request.

    Attributes:
        split: which labeled slices train, validate and test; ``notes``: what the user should know.
        window: the normalisation window (a resumed run keeps its checkpoint's).
        data: the training slices and masks, padded to at least one patch.
        val_items: the validation tensors (centre-cropped, padded to the model's multiple).
        extra: the run's ``extra`` record (split, slice names, window, class names, resumed_from).
        dataset_version: the masks' version stamp.
        checkpoint: the checkpoint resumed from, loaded, else ``None``.
        stack: the dataset's images (as read: an array or a volume), for the held-out slices at the end.
    """

    split: Split
    window: tuple[float, float]
    data: TrainingData
    val_items: list[tuple[torch.Tensor, torch.Tensor]]
    extra: dict[str, Any]
    dataset_version: str
    checkpoint: Checkpoint | None
    stack: Any
    val_masks: list[np.ndarray]
    notes: list[str] = field(default_factory=list)

    def held_out(self, ws: Workspace, request: TrainingRequest) -> tuple[tuple[list, list], tuple[list, list]]:
        """``((images, masks) of the validation slices, of the labeled test slices)``, whole, for
        :func:`~core.train.finish.finish_run` at the end of the run."""
        cfg, s = request.config, self.split
        test_masks = ws.read_truths(request.dataset, s.test)[0] if s.test else []
        return (
            (context_images(self.stack, s.val, cfg.context), self.val_masks),
            (context_images(self.stack, s.test, cfg.context), test_masks),
        )


def prepare_run(request: TrainingRequest, workspace: Workspace | None = None) -> PreparedRun:
    """Split the labeled slices (a resumed run keeps its validation slices), measure the window (or
    take the checkpoint's), and read the training slices, masks and validation tensors.

    Args:
        request: a checked request (:func:`~core.train.request.check_request`).
        workspace: where to read (default: ``request.workspace``; torchrun's other ranks give theirs).
    """
    ws = workspace or Workspace(request.workspace)
    cfg, ds = request.config, request.dataset
    info = ws.dataset(ds)
    labeled = ws.labeled_slices(ds)
    ckpt = load_checkpoint(request.resume_path) if request.resume_path else None
    names = info.slice_names
    old_val = [z for z in ckpt.extra.get("val_slices", []) if z in labeled] if ckpt is not None else []
    split = split_for(labeled, names, cfg, old_val if old_val and len(old_val) < len(labeled) else None)
    notes = list(split.notes)
    partial = [z for z in sorted(set(split.train) | set(split.val)) if info.coverage[z] == "partial"]
    if partial:
        notes.append(
            f"{len(partial)} slice(s) have partial masks: loss and validation scores count labeled pixels only"
        )
    stack = ws.read_images(ds)  # once: the window and every slice below come from it
    window = ckpt.norm_window if ckpt is not None else percentile_range(stack)
    extra = {
        "resumed_from": request.resumed_from,
        "train_slices": split.train,
        "val_slices": split.val,
        "train_names": [names[z] for z in split.train],
        "val_names": [names[z] for z in split.val],
        "test_slices": split.test,
        "test_names": [names[z] for z in split.test],
        "split": split.to_dict(),
        "norm_window": list(window),
        "class_names": list(info.class_names),
    }
    if not request.resumed_from:
        extra.pop("resumed_from")
    version = ws.masks_version(ds, sorted(set(split.train) | set(split.val) | set(split.test)))

    ps = cfg.patch_size
    images = [pad_to(a, ps, ps) for a in context_images(stack, split.train, cfg.context)]
    masks = [pad_to(m, ps, ps) for m in ws.read_masks(ds, split.train)[1]]
    val_masks, whole = ws.read_truths(ds, split.val)
    if whole:
        notes.append(
            f"validation slice(s) {format_slices(whole)} hold only labels accepted from a model: scored against them"
        )
    val_items = validation_tensors(
        context_images(stack, split.val, cfg.context), val_masks, window, required_multiple(cfg.model), cfg.val_crop
    )
    return PreparedRun(
        split=split,
        window=window,
        data=TrainingData(images, masks, window),
        val_items=val_items,
        extra=extra,
        dataset_version=version,
        checkpoint=ckpt,
        stack=stack,
        val_masks=val_masks,
        notes=notes,
    )
