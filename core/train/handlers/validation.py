"""Validation after every epoch, as a handler: :class:`Validation` scores the network on the run's
validation tensors (:func:`validate`) and adds the scores to the epoch's row, before the handlers
that record it. It runs on every torchrun rank (each validates its share; the sums are reduced)."""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from ...data.masks import UNLABELED
from ...nn.device import uses_channels_last
from ...nn.metrics import ConfusionAccumulator, scores_from_confusion
from ...nn.model import labels_from_logits
from .. import distributed
from ..events import Callbacks
from ..loop import autocast

__all__ = ["Validation", "validate"]


class Validation(Callbacks):
    """Adds ``val_loss, val_dice, val_iou, val_accuracy, val_pixel_error, val_labeled`` (the share of
    validation pixels scored: the labeled ones), the per-class lists and, for binary data,
    ``val_dice_fg, val_iou_fg`` to each epoch's row.

    Args:
        items: validation tensors (:func:`~core.train.data.validation_tensors`).
        n_classes: the classes (the run's ``config.model.n_classes``).
        device, amp_dtype: where and how the network runs.
        check_stop: called before each slice (raises :class:`~core.train.events.Stopped`).
    """

    every_rank = True

    def __init__(
        self,
        items: list[tuple[torch.Tensor, torch.Tensor]],
        n_classes: int,
        device: torch.device,
        amp_dtype: torch.dtype | None,
        check_stop: Callable[[], None] | None = None,
    ):
        self.items, self.n_classes, self.device, self.amp_dtype = items, n_classes, device, amp_dtype
        self._check_stop = check_stop

    def on_validate(self, state: Any, row: dict[str, Any]) -> None:
        s = validate(
            state.model, self.items, state.loss_fn, self.n_classes, self.device, self.amp_dtype, self._check_stop
        )
        row.update({f"val_{key}": s[key] for key in ("loss", "accuracy", "pixel_error", "labeled")})
        row.update(val_dice=s["mean_dice"], val_iou=s["mean_iou"])  # the class means
        row.update(val_dice_per_class=s["dice"], val_iou_per_class=s["iou"])
        if self.n_classes == 2:
            row["val_dice_fg"], row["val_iou_fg"] = s["dice_fg"], s["iou_fg"]


def validate(
    model: nn.Module,
    items: list[tuple[torch.Tensor, torch.Tensor]],
    loss_fn: nn.Module,
    n_classes: int,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    check_stop: Any = None,
) -> dict[str, Any]:
    """Loss and scores (:class:`~core.nn.metrics.ConfusionAccumulator`) over the validation tensors,
    summed over all their labeled pixels (not-labeled ones are left out: ``labeled`` is their share);
    ``check_stop`` is called before each slice.

    Under torchrun each rank validates its share of ``items`` and the sums are reduced over the
    ranks; ``check_stop`` is then not called (a rank stopping alone would leave the others waiting).
    """
    items = distributed.shard(items)
    if distributed.active():
        check_stop = None
    distributed.sync_buffers(model)
    model.eval()
    acc = ConfusionAccumulator(n_classes)
    loss_sum, n, total = 0.0, 0, 0
    cuda = device.type == "cuda"
    with torch.inference_mode():
        for img, mask in items:
            if check_stop is not None:
                check_stop()
            x = img.to(device, non_blocking=cuda)
            if uses_channels_last(device):
                x = x.contiguous(memory_format=torch.channels_last)
            y = mask.to(device, non_blocking=cuda)
            with autocast(device, amp_dtype):
                logits = model(x)
            logits = logits[..., : y.shape[-2], : y.shape[-1]].float()
            n_labeled = int((y != UNLABELED).sum())
            loss_sum += float(loss_fn(logits, y)) * n_labeled
            n += n_labeled
            total += y.numel()
            acc.update(labels_from_logits(logits, n_classes), y)
    model.train()
    cm, loss_sum, n, total = distributed.reduce_sum(acc.matrix, loss_sum, n, total)
    return {**scores_from_confusion(cm), "loss": loss_sum / max(n, 1), "labeled": n / max(total, 1)}
