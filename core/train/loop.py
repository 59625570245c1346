"""The training loop: :func:`fit` runs epochs of optimisation steps and a validation after each,
and reports through :class:`Callbacks` (like MONAI's engines and handlers). It knows nothing of
threads, the workspace or the catalog: a stop is a callback raising :class:`Stopped`, recording
epochs and checkpoints is :class:`~core.train.recorder.RunRecorder`'s.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.masks import UNLABELED
from ..errors import SegDashError
from ..nn.augment import augment_batch
from ..nn.checkpoint import Checkpoint
from ..nn.device import uses_channels_last
from ..nn.losses import EDGE_RADIUS, Loss  # noqa: F401 - re-exported: core.train.loop.Loss
from ..nn.metrics import ConfusionAccumulator, scores_from_confusion
from ..nn.model import build_model, labels_from_logits
from . import distributed
from .budget import TimeBudget
from .config import TrainConfig
from .data import PatchDataset
from .sparse import labeled_patch_coords

__all__ = [
    "Stopped",
    "FitState",
    "TrainingData",
    "Callbacks",
    "fit",
    "validate",
    "Loss",
    "EDGE_RADIUS",
    "lr_at",
    "make_optimizer",
    "autocast",
    "build_training",
]

_FINAL_LR_RATIO = 0.01  # cosine decays to this fraction of lr


class Stopped(Exception):
    """Raised by :meth:`Callbacks.check_stop` when a stop was requested."""


@dataclass
class TrainingData:
    """What :func:`fit` trains and validates on: raw training slices and masks (padded to at least one
    patch), the normalisation window, and validation tensors (:func:`~core.train.data.validation_tensors`)."""

    images: list[np.ndarray]
    masks: list[np.ndarray]
    window: tuple[float, float]
    val_items: list[tuple[torch.Tensor, torch.Tensor]]


@dataclass
class FitState:
    """What the loop changes and the callbacks read: the network, its optimizer and scaler, where the
    run is (``epoch``: last completed; ``global_step``: optimisation steps so far) and the per-epoch
    rows so far (``history``)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: Any
    loss_fn: nn.Module
    history: list[dict[str, Any]] = field(default_factory=list)
    epoch: int = 0
    global_step: int = 0


class Callbacks:
    """Hooks of :func:`fit`; each does nothing here. ``check_stop`` raises :class:`Stopped` to end the run."""

    def check_stop(self) -> None:
        """Called before every step and every validation slice."""

    def on_epoch_start(self, state: FitState, epoch: int) -> None:
        """Epoch ``epoch`` (1-based) begins."""

    def on_step(self, state: FitState, epoch: int, step: int) -> None:
        """Step ``step`` (1-based) of ``epoch`` is done."""

    def on_plan(self, state: FitState, epochs: int) -> None:
        """A time budget (``minutes``) planned the run anew: it now ends at epoch ``epochs``."""

    def on_epoch_end(self, state: FitState, row: dict[str, Any]) -> None:
        """``row`` (appended to ``state.history``) holds the epoch's losses and validation scores."""

    def on_stop(self, state: FitState) -> None:
        """A :class:`Stopped` ended the run mid-epoch (it is raised again afterwards)."""


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Learning rate at global optimisation step ``step`` (0-based)."""
    if cfg.scheduler == "none":
        return cfg.lr
    total = max(1, cfg.epochs * cfg.steps_per_epoch)
    t = min(1.0, step / total)
    lo = cfg.lr * _FINAL_LR_RATIO
    return lo + 0.5 * (cfg.lr - lo) * (1.0 + math.cos(math.pi * t))


def make_optimizer(cfg: TrainConfig, params: Any) -> torch.optim.Optimizer:
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)


def autocast(device: torch.device, dtype: torch.dtype | None) -> Any:
    """Mixed precision when ``dtype`` is given, else a no-op context."""
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def build_training(
    cfg: TrainConfig,
    n_classes: int,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    resume: Checkpoint | None = None,
) -> FitState:
    """Network, optimizer, scaler and loss for ``cfg`` on ``device`` (seeded with ``cfg.seed``).

    A resumed network gets its weights, optimizer and scaler state from ``resume`` (the new config's
    learning rate and weight decay win), never downloaded pretrained weights; its history and
    epoch count are set too.
    """
    torch.manual_seed(cfg.seed)
    # a resumed model gets its weights from the checkpoint: never download pretrained ones for it
    model = build_model(cfg.model if resume is None else replace(cfg.model, encoder_weights=None)).to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if uses_channels_last(device):
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(cfg, model.parameters())
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    loss_fn = Loss(cfg.loss, n_classes, cfg.edge_weight)
    state = FitState(model=model, optimizer=optimizer, scaler=scaler, loss_fn=loss_fn)
    if resume is not None:
        model.load_state_dict(resume.model.state_dict())
        if resume.state.get("optimizer"):
            optimizer.load_state_dict(resume.state["optimizer"])
            for g in optimizer.param_groups:  # the new config's hyper-parameters win
                g["lr"], g["weight_decay"] = cfg.lr, cfg.weight_decay
        if resume.state.get("scaler") and scaler.is_enabled():
            scaler.load_state_dict(resume.state["scaler"])
        state.history = [dict(h) for h in resume.history]
        state.epoch = resume.epoch
    state.global_step = state.epoch * cfg.steps_per_epoch
    return state


def fit(
    state: FitState,
    cfg: TrainConfig,
    data: TrainingData,
    n_classes: int,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    callbacks: Callbacks,
) -> None:
    """Train from ``state.epoch + 1`` to ``cfg.epochs``, validating after every epoch; with a time
    budget (``cfg.minutes``) the last epoch is planned again after every epoch
    (:class:`~core.train.budget.TimeBudget`, ``callbacks.on_plan``) and the schedule follows it.

    Each epoch draws ``cfg.steps_per_epoch * cfg.batch_size`` patches (seeded by ``cfg.seed`` and
    the epoch), augments them on ``device`` and takes one optimisation step per batch with the
    per-step learning rate (:func:`lr_at`). Raises :class:`Stopped` (after ``callbacks.on_stop``)
    when ``callbacks.check_stop`` does, and ``ValueError`` when the loss stops being finite.

    Under torchrun every rank calls it: the ranks share each batch and reduce the metrics, and only
    rank 0's callbacks record (:mod:`core.train.distributed`; in one process its hooks do nothing).
    """
    cuda = device.type == "cuda"
    channels_last = uses_channels_last(device)
    model, optimizer, scaler, loss_fn, history = (
        state.model,
        state.optimizer,
        state.scaler,
        state.loss_fn,
        state.history,
    )
    ps = cfg.patch_size
    # several processes (torchrun): a DDP wrapper for the step, rank 0's callbacks, a joint stop
    callbacks = distributed.callbacks_for_rank(callbacks)
    check_stop = distributed.stop_together(callbacks.check_stop)
    net = distributed.wrap(model, device)
    budget, first = (TimeBudget(cfg.minutes), state.epoch) if cfg.minutes > 0 else (None, 0)
    if budget is not None and cfg.epochs <= state.epoch:
        cfg = replace(cfg, epochs=state.epoch + 1)
    epoch = state.epoch
    try:
        while epoch < cfg.epochs:
            epoch += 1
            t_epoch = time.time()
            callbacks.on_epoch_start(state, epoch)
            rng = np.random.default_rng([cfg.seed, epoch])
            n_patches = cfg.steps_per_epoch * cfg.batch_size
            coords = labeled_patch_coords(data.masks, ps, n_patches, rng, cfg.skip_empty_patches)
            patches = PatchDataset(data.images, data.masks, coords, ps, data.window)
            loader = torch.utils.data.DataLoader(
                patches,
                batch_size=distributed.local_batch(cfg.batch_size),
                sampler=distributed.sampler(patches),
                shuffle=False,
                num_workers=cfg.num_workers,
                pin_memory=cuda,
                drop_last=False,
            )
            aug_gen = torch.Generator().manual_seed(distributed.rank_seed(cfg.seed * 100_003 + epoch))
            net.train()
            loss_sum, n_seen, t_train = 0.0, 0, 0.0
            for step, (x, y) in enumerate(loader, start=1):
                check_stop()
                t_step = time.time()
                x = x.to(device, non_blocking=cuda)
                y = y.to(device, non_blocking=cuda)
                x, y = augment_batch(x, y, cfg.augment, generator=aug_gen)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                lr = lr_at(cfg, state.global_step)
                for g in optimizer.param_groups:
                    g["lr"] = lr
                with autocast(device, amp_dtype):
                    logits = net(x)
                loss = loss_fn(logits, y)
                if not torch.isfinite(loss):
                    raise SegDashError(
                        f"the loss became {loss.item()} at epoch {epoch}, step {step}; lower the learning rate"
                    )
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                state.global_step += 1
                loss_sum += float(loss.detach()) * x.shape[0]
                n_seen += x.shape[0]
                t_train += time.time() - t_step
                callbacks.on_step(state, epoch, step)
            loss_sum, n_seen = distributed.reduce_sum(loss_sum, n_seen)
            scores = validate(model, data.val_items, loss_fn, n_classes, device, amp_dtype, callbacks.check_stop)
            row = {
                "epoch": epoch,
                "train_loss": loss_sum / max(n_seen, 1),
                "val_loss": scores["loss"],
                "val_dice": scores["mean_dice"],
                "val_iou": scores["mean_iou"],
                "val_accuracy": scores["accuracy"],
                "val_pixel_error": scores["pixel_error"],
                "val_labeled": scores["labeled"],  # share of validation pixels scored (labeled ones)
                "val_dice_per_class": scores["dice"],
                "val_iou_per_class": scores["iou"],
                "lr": optimizer.param_groups[0]["lr"],
                "images_per_s": n_seen / max(t_train, 1e-9),
                "time_s": time.time() - t_epoch,
            }
            if n_classes == 2:
                row["val_dice_fg"], row["val_iou_fg"] = scores["dice_fg"], scores["iou_fg"]
            history.append(row)
            state.epoch = epoch
            if budget is not None:  # rank 0's plan on every rank, so that all stop at the same epoch
                planned = max(epoch, first + int(distributed.broadcast_object(budget.epoch_ended())))
                if planned != cfg.epochs:
                    cfg = replace(cfg, epochs=planned)
                    callbacks.on_plan(state, planned)
            callbacks.on_epoch_end(state, row)
    except Stopped:
        callbacks.on_stop(state)
        raise


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
