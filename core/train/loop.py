"""The training loop: :func:`fit` runs epochs of optimisation steps and tells its handlers
(:mod:`core.train.handlers`: validation, checkpoints, catalog rows, progress; the hooks are
:class:`~core.train.events.Callbacks`) what happens, as MONAI's engines do. It knows nothing of
threads, the workspace or the catalog: a stop is a handler's ``check_stop`` raising
:class:`~core.train.events.Stopped`.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import SegDashError
from ..nn.augment import augment_batch
from ..nn.checkpoint import Checkpoint
from ..nn.device import uses_channels_last
from ..nn.losses import EDGE_RADIUS, Loss  # noqa: F401 - re-exported: core.train.loop.Loss
from ..nn.model import build_model
from . import distributed
from .budget import TimeBudget
from .config import TrainConfig
from .data import PatchDataset
from .events import Callbacks, Events, Stopped
from .sparse import labeled_patch_coords

__all__ = [
    "Stopped",
    "FitState",
    "TrainingData",
    "Callbacks",
    "fit",
    "Loss",
    "EDGE_RADIUS",
    "lr_at",
    "make_optimizer",
    "autocast",
    "build_training",
]

_FINAL_LR_RATIO = 0.01  # cosine decays to this fraction of lr


@dataclass
class TrainingData:
    """What :func:`fit` draws its patches from: raw training slices and masks (padded to at least one
    patch) and the normalisation window (validation's tensors are its handler's)."""

    images: list[np.ndarray]
    masks: list[np.ndarray]
    window: tuple[float, float]


@dataclass
class FitState:
    """What the loop changes and the handlers read: the network, its optimizer and scaler, where the
    run is (``epoch``: last completed; ``global_step``: optimisation steps so far; ``epochs``: the
    final epoch as planned now) and the per-epoch rows so far (``history``)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: Any
    loss_fn: nn.Module
    history: list[dict[str, Any]] = field(default_factory=list)
    epoch: int = 0
    global_step: int = 0
    epochs: int = 0


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
    device: torch.device,
    amp_dtype: torch.dtype | None,
    resume: Checkpoint | None = None,
) -> FitState:
    """Network, optimizer, scaler and loss for ``cfg`` (``cfg.model.n_classes`` classes) on ``device``
    (seeded with ``cfg.seed``).

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
    loss_fn = Loss(cfg.loss, cfg.model.n_classes, cfg.edge_weight)
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
    device: torch.device,
    amp_dtype: torch.dtype | None,
    handlers: Sequence[Callbacks],
) -> None:
    """Train from ``state.epoch + 1`` to ``cfg.epochs``; after each epoch's steps the handlers
    validate (``on_validate``) and record (``on_epoch_end``). With a time budget (``cfg.minutes``)
    the last epoch is planned again after every epoch (:class:`~core.train.budget.TimeBudget`,
    ``on_plan``) and the schedule follows it.

    Each epoch draws ``cfg.steps_per_epoch * cfg.batch_size`` patches (seeded by ``cfg.seed`` and
    the epoch), augments them on ``device`` and takes one optimisation step per batch with the
    per-step learning rate (:func:`lr_at`). Raises :class:`Stopped` (after ``on_stop``) when a
    handler's ``check_stop`` does, and ``ValueError`` when the loss stops being finite.

    Under torchrun every rank calls it: the ranks share each batch and reduce the metrics; rank 0
    runs every handler, the others those marked ``every_rank`` (:mod:`core.train.distributed`).
    """
    events = Events(distributed.handlers_for_rank(handlers))
    check_stop = distributed.stop_together(events.check_stop)
    net = distributed.wrap(state.model, device)
    budget, first = (TimeBudget(cfg.minutes), state.epoch) if cfg.minutes > 0 else (None, 0)
    if budget is not None and cfg.epochs <= state.epoch:
        cfg = replace(cfg, epochs=state.epoch + 1)
    state.epochs = cfg.epochs
    try:
        while state.epoch < cfg.epochs:
            epoch, t_epoch = state.epoch + 1, time.time()
            events.on_epoch_start(state, epoch)
            row = _train_epoch(state, net, cfg, data, epoch, device, amp_dtype, events, check_stop)
            events.on_validate(state, row)
            row.update(lr=state.optimizer.param_groups[0]["lr"], time_s=time.time() - t_epoch)
            state.history.append(row)
            state.epoch = epoch
            if budget is not None:  # rank 0's plan on every rank, so that all stop at the same epoch
                planned = max(epoch, first + int(distributed.broadcast_object(budget.epoch_ended())))
                if planned != cfg.epochs:
                    cfg = replace(cfg, epochs=planned)
                    state.epochs = planned
                    events.on_plan(state, planned)
            events.on_epoch_end(state, row)
    except Stopped:
        events.on_stop(state)
        raise


def _train_epoch(
    state: FitState,
    net: nn.Module,
    cfg: TrainConfig,
    data: TrainingData,
    epoch: int,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    events: Callbacks,
    check_stop: Any,
) -> dict[str, Any]:
    """One epoch's optimisation steps; returns its row so far (``epoch``, ``train_loss``, ``images_per_s``)."""
    cuda, channels_last = device.type == "cuda", uses_channels_last(device)
    rng = np.random.default_rng([cfg.seed, epoch])
    ps, n_patches = cfg.patch_size, cfg.steps_per_epoch * cfg.batch_size
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
        x, y = x.to(device, non_blocking=cuda), y.to(device, non_blocking=cuda)
        x, y = augment_batch(x, y, cfg.augment, generator=aug_gen)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        for g in state.optimizer.param_groups:
            g["lr"] = lr_at(cfg, state.global_step)
        with autocast(device, amp_dtype):
            logits = net(x)
        loss = state.loss_fn(logits, y)
        if not torch.isfinite(loss):
            raise SegDashError(f"the loss became {loss.item()} at epoch {epoch}, step {step}; lower the learning rate")
        state.optimizer.zero_grad(set_to_none=True)
        state.scaler.scale(loss).backward()
        state.scaler.step(state.optimizer)
        state.scaler.update()
        state.global_step += 1
        loss_sum += float(loss.detach()) * x.shape[0]
        n_seen += x.shape[0]
        t_train += time.time() - t_step
        events.on_step(state, epoch, step)
    loss_sum, n_seen = distributed.reduce_sum(loss_sum, n_seen)
    return {"epoch": epoch, "train_loss": loss_sum / max(n_seen, 1), "images_per_s": n_seen / max(t_train, 1e-9)}
