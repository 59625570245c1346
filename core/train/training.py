"""Training: a background job that trains a network on a dataset's labeled slices.

The same code path serves the dashboard and the command line: a :class:`TrainingJob` runs in a
daemon thread and fills a snapshot that the page polls (:meth:`TrainingJob.snapshot`);
:func:`train_headless` starts one, waits for it and returns a summary. The worker never touches
the UI, catches every error into the ``failed`` state, and stops within one optimisation step.

Recipe (:func:`default_config`): the classic U-Net (Ronneberger et al. 2015) at width 16, 256x256
patches, batch 4, 20 epochs of 100 steps, BCE + Dice loss, flips and 90-degree rotations, AdamW
(lr 2e-3, weight decay 1e-4) with a per-step cosine decay to 1% of lr, mixed precision. About 12
minutes on a 2-core CPU with native bf16 (twice that without) for the ISBI 2012 sample.
Chosen by ``benchmarks/bench_accuracy.py`` (held-out ISBI slices 24-29): it matched or beat an
smp ``Unet``/``resnet18`` given the same or more wall time, and takes 0.3 s a step against 0.5 s.

Data:

- Slices are split into training and validation at slice level (:func:`split_slices`).
- Images are normalised with the dataset's 1-99 percentile window (:mod:`core.data.intensity`),
  measured once and stored in the checkpoint (a resumed run keeps its checkpoint's window).
- Each epoch draws ``steps_per_epoch * batch_size`` random patches from the training slices
  (slice chosen in proportion to its area; slices smaller than the patch are reflect-padded);
  with ``skip_empty_patches`` a patch without foreground is redrawn (up to 20 times).
- Augmentation (:mod:`core.nn.augment`) runs on the training device, per sample.
- Validation runs on whole validation slices, centre-cropped to at most ``val_crop`` pixels a side
  (512 by default, so it stays fast on a CPU; 0 = no crop), padded by reflection to the model's
  multiple and cropped back. Scores are summed over all validation pixels.

Metrics: the headline ``val_dice`` is the mean Dice over classes (for binary data: mean of
background and foreground); per-class lists (``val_dice_per_class``) and, for binary data,
``val_dice_fg`` (Dice of class 1) are recorded too. ``best.pt`` is the epoch with the best
``val_dice``; ``last.pt`` the latest state.

Resume: ``resume_from`` (a run id or a checkpoint path) starts a **new run** (new run id, its
catalog record has ``extra.resumed_from``) from that checkpoint's weights, optimizer state, epoch
count and history; ``epochs`` is the final epoch number, so resuming a stopped 30-epoch run with
the same config trains the remaining epochs. The model config, normalisation window and
validation slices are taken from the checkpoint. A stop in the middle of an epoch saves the
weights reached in ``last.pt`` with the epoch count of the last *completed* epoch; resuming starts
that epoch over.

Reproducibility: the same seed gives the same losses and scores on a CPU (patch positions and
augmentations come from seeded generators; the network is initialised from ``torch.manual_seed``,
so this holds when one job runs at a time in the process). At the end (done, stopped or failed
after an epoch) ``bundle.zip`` is written to the run folder (:func:`write_bundle`).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import math
import platform
import secrets
import shutil
import threading
import time
import zipfile
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..nn.augment import AugmentConfig, augment_batch
from ..nn.checkpoint import load_checkpoint, read_checkpoint_info, save_checkpoint
from ..nn.device import amp_dtype_for, use_cpu_threads, uses_channels_last
from ..data.intensity import normalize, percentile_range
from ..data.io import atomic_write, is_disk_full
from ..nn.metrics import ConfusionAccumulator
from ..nn.model import ModelConfig, build_model, labels_from_logits, required_multiple
from ..store.workspace import Workspace, disk_full_error, validate_name

__all__ = [
    "LOSSES", "SCHEDULERS", "OPTIMIZERS", "JOB_STATES", "TrainConfig", "default_config", "split_slices",
    "select_device", "device_label", "TrainingJob", "JobRegistry", "registry", "train_headless",
    "write_bundle", "job_progress",
]

log = logging.getLogger(__name__)

LOSSES = ("bce", "dice", "jaccard", "focal", "bce+dice")
SCHEDULERS = ("cosine", "none")
OPTIMIZERS = ("adamw", "adam", "sgd")
DEVICES = ("auto", "cpu", "cuda", "mps")
JOB_STATES = ("queued", "running", "stopping", "done", "failed", "stopped")
_ACTIVE_STATES = ("queued", "running", "stopping")
_HEARTBEAT_S = 5.0  # the worker's process writes its heartbeat into the run's catalog row this often
_FINAL_LR_RATIO = 0.01  # cosine decays to this fraction of lr
_EMPTY_PATCH_TRIES = 20


# -- configuration -----------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs besides the data. Defaults are the recommended recipe.

    Args:
        model: the network (its ``n_classes`` is set from the dataset when training).
        augment: augmentation of training patches.
        loss: ``bce``, ``dice``, ``jaccard``, ``focal`` or ``bce+dice`` (``bce`` is cross-entropy for
            more than two classes); smp losses.
        epochs: final epoch number.
        batch_size: patches per optimisation step.
        lr: peak learning rate.
        patch_size: side of the square training patches; a multiple of the model's
            :func:`~core.nn.model.required_multiple`.
        val_fraction: fraction of labeled slices kept for validation (at least one slice when there
            are two or more).
        seed: random seed (split, patches, augmentation, initialisation).
        skip_empty_patches: redraw patches without foreground (class > 0).
        steps_per_epoch: optimisation steps per epoch.
        weight_decay: optimizer weight decay.
        scheduler: ``cosine`` (per-step decay to 1% of ``lr``) or ``none``.
        optimizer: ``adamw``, ``adam`` or ``sgd`` (momentum 0.9, nesterov).
        num_workers: DataLoader worker processes for patch extraction (0 = in the training thread).
        amp: mixed precision: on CUDA bf16 where supported, else fp16 with a GradScaler; on a
            CPU with native bf16 (AVX512-BF16 or AMX) bf16, about twice as fast; ignored
            elsewhere (see :func:`core.nn.device.amp_dtype_for`). Weights, optimizer and loss stay float32.
        val_crop: validation slices are centre-cropped to at most this side (0 = whole slices).
        device: ``auto`` (CUDA, else MPS, else CPU), ``cpu``, ``cuda`` or ``mps``.

    Example:
        >>> TrainConfig.from_dict({"epochs": 3, "model": {"arch": "classic"}}).model.arch
        'classic'
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    loss: str = "bce+dice"
    epochs: int = 15
    batch_size: int = 4
    lr: float = 1e-3
    patch_size: int = 256
    val_fraction: float = 0.1
    seed: int = 0
    skip_empty_patches: bool = False
    steps_per_epoch: int = 50
    weight_decay: float = 1e-4
    scheduler: str = "cosine"
    optimizer: str = "adamw"
    num_workers: int = 0
    amp: bool = True
    val_crop: int = 512
    device: str = "auto"

    def __post_init__(self) -> None:
        if not isinstance(self.model, ModelConfig):
            raise ValueError(f"model must be a ModelConfig, got {type(self.model).__name__}")
        if not isinstance(self.augment, AugmentConfig):
            raise ValueError(f"augment must be an AugmentConfig, got {type(self.augment).__name__}")
        for name, choices in (("loss", LOSSES), ("scheduler", SCHEDULERS), ("optimizer", OPTIMIZERS),
                              ("device", DEVICES)):
            v = getattr(self, name)
            if not isinstance(v, str) or v.lower() not in choices:
                raise ValueError(f"{name} must be one of {', '.join(choices)}; got {v!r}")
            object.__setattr__(self, name, v.lower())
        for name, lo, hi in (("epochs", 1, 100_000), ("batch_size", 1, 4096), ("patch_size", 16, 8192),
                             ("seed", 0, 2**31 - 1), ("steps_per_epoch", 1, 10_000_000), ("num_workers", 0, 256),
                             ("val_crop", 0, 65536)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"{name} must be an integer in {lo}..{hi}, got {v!r}")
        for name, lo, hi in (("lr", 1e-8, 10.0), ("weight_decay", 0.0, 10.0), ("val_fraction", 0.0, 0.9)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
                raise ValueError(f"{name} must be a number in {lo:g}..{hi:g}, got {v!r}")
            object.__setattr__(self, name, float(v))
        for name in ("skip_empty_patches", "amp"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        m = required_multiple(self.model)
        if self.patch_size % m:
            raise ValueError(f"patch_size {self.patch_size} must be a multiple of {m} for "
                             f"{self.model.describe()} (e.g. {max(m, self.patch_size // m * m)})")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict; ``from_dict(to_dict())`` gives the same config."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["model"] = self.model.to_dict()
        out["augment"] = self.augment.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None, base: TrainConfig | None = None) -> TrainConfig:
        """Config from a partial dict: ``base`` (default: the recipe) with the given values replaced.

        ``model`` and ``augment`` may be partial dicts too (merged into the base's). Unknown keys
        raise ``ValueError``.
        """
        base = base or cls()
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown training setting(s) {unknown}; known: {sorted(known)}")
        if "model" in d and not isinstance(d["model"], ModelConfig):
            if not isinstance(d["model"], dict):
                raise ValueError("model must be a dict of model settings")
            d["model"] = ModelConfig.from_dict({**base.model.to_dict(), **d["model"]})
        if "augment" in d and not isinstance(d["augment"], AugmentConfig):
            if not isinstance(d["augment"], dict):
                raise ValueError("augment must be a dict of augmentation settings")
            d["augment"] = AugmentConfig.from_dict({**base.augment.to_dict(), **d["augment"]})
        try:
            return replace(base, **d)
        except TypeError as exc:
            raise ValueError(f"invalid training settings: {exc}") from None


def default_config(n_classes: int = 2) -> TrainConfig:
    """The recommended recipe (see the module docstring) for data with ``n_classes`` classes.

    The dashboard's training form and ``python -m core train`` start from it; ``TrainConfig()``'s
    own field defaults are the generic ones (smp ``Unet``/``resnet18``, 15 x 50 steps, lr 1e-3).
    """
    return TrainConfig(model=ModelConfig(arch="classic", classic_width=16, n_classes=n_classes),
                       epochs=20, steps_per_epoch=100, lr=2e-3)


def split_slices(zs: Sequence[int], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Split slice indices into training and validation sets at random, reproducibly.

    Args:
        zs: slice indices (labeled slices).
        val_fraction: fraction for validation; rounded, at least 1 when ``len(zs) >= 2``, and at
            least one slice always stays for training.
        seed: random seed.

    Returns:
        ``(train_zs, val_zs)``, each sorted, disjoint, together ``zs``.

    Example:
        >>> split_slices(range(10), 0.2, seed=0)
        ([0, 1, 2, 3, 5, 7, 8, 9], [4, 6])
    """
    zs = [int(z) for z in zs]
    if len(set(zs)) != len(zs):
        raise ValueError("slice indices must be unique")
    if len(zs) < 2:
        return sorted(zs), []
    n_val = min(len(zs) - 1, max(1, int(round(len(zs) * val_fraction))))
    perm = np.random.default_rng(seed).permutation(len(zs))
    val = sorted(zs[i] for i in perm[:n_val])
    train = sorted(zs[i] for i in perm[n_val:])
    return train, val


# -- device ------------------------------------------------------------------------------------

def select_device(preference: str = "auto") -> torch.device:
    """``cuda`` when available, else ``mps``, else ``cpu`` (``preference`` forces one).

    On the CPU, torch's thread count is set, on the calling thread, to the number of cores (or
    torch's count if higher), or to ``$SEGDASH_THREADS`` when that is given (useful when other
    processes share the cores); see :mod:`core.nn.device` for why it must be set on that thread.
    """
    pref = preference.lower()
    if pref in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    if pref == "cuda":
        raise ValueError("CUDA was requested but no CUDA GPU is available (device='cuda'); use 'auto' or 'cpu'")
    mps = getattr(torch.backends, "mps", None)
    if pref in ("auto", "mps") and mps is not None and mps.is_available():
        return torch.device("mps")
    if pref == "mps":
        raise ValueError("MPS was requested but is not available; use 'auto' or 'cpu'")
    use_cpu_threads()  # on this (worker) thread: see core.nn.device
    return torch.device("cpu")


def device_label(device: torch.device) -> str:
    """Human description, e.g. ``cpu (2 threads)`` or ``cuda: NVIDIA H100``."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "mps (Apple GPU)"
    n = torch.get_num_threads()
    return f"cpu ({n} thread{'s' if n != 1 else ''})"


# -- data --------------------------------------------------------------------------------------

def _pad_to(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """Reflect-pad a 2-D array at the bottom/right to at least (h, w)."""
    ph, pw = max(0, h - a.shape[0]), max(0, w - a.shape[1])
    if not ph and not pw:
        return a
    mode = "reflect" if min(a.shape) > 1 else "edge"
    return np.pad(a, ((0, ph), (0, pw)), mode=mode)


class _PatchDataset(torch.utils.data.Dataset):
    """Patches at precomputed positions; images normalised on the fly (raw slices kept in memory)."""

    def __init__(self, images: list[np.ndarray], masks: list[np.ndarray], coords: np.ndarray, patch: int,
                 window: tuple[float, float]):
        self.images, self.masks, self.coords, self.patch, self.window = images, masks, coords, patch, window

    def __len__(self) -> int:
        return len(self.coords)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        s, y, x = (int(v) for v in self.coords[i])
        p = self.patch
        img = normalize(self.images[s][y:y + p, x:x + p], self.window)
        msk = self.masks[s][y:y + p, x:x + p].astype(np.int64)
        return torch.from_numpy(img)[None], torch.from_numpy(msk)


def _patch_coords(masks: list[np.ndarray], patch: int, n: int, rng: np.random.Generator,
                  skip_empty: bool) -> np.ndarray:
    """(n, 3) rows of (slice, y, x): slices in proportion to their area, positions uniform.

    With ``skip_empty`` a patch without foreground is redrawn; after :data:`_EMPTY_PATCH_TRIES`
    misses (sparse foreground) the patch is placed around a random foreground pixel instead, so
    every patch has foreground whenever the slices have any.
    """
    areas = np.array([m.size for m in masks], dtype=np.float64)
    prob = areas / areas.sum()
    fg_cache: dict[int, np.ndarray] = {}
    fg_slices = [i for i, m in enumerate(masks) if m.any()] if skip_empty else []
    out = np.zeros((n, 3), np.int64)
    for i in range(n):
        for _ in range(_EMPTY_PATCH_TRIES if skip_empty else 1):
            s = int(rng.choice(len(masks), p=prob))
            h, w = masks[s].shape
            y, x = int(rng.integers(0, h - patch + 1)), int(rng.integers(0, w - patch + 1))
            if not skip_empty or masks[s][y:y + patch, x:x + patch].any():
                break
        else:
            if fg_slices:
                s = int(fg_slices[rng.integers(len(fg_slices))])
                if s not in fg_cache:
                    fg_cache[s] = np.flatnonzero(masks[s])
                h, w = masks[s].shape
                py, px = divmod(int(fg_cache[s][rng.integers(len(fg_cache[s]))]), w)
                y = int(np.clip(py - rng.integers(0, patch), 0, h - patch))
                x = int(np.clip(px - rng.integers(0, patch), 0, w - patch))
        out[i] = (s, y, x)
    return out


def _center_crop(a: np.ndarray, size: int) -> np.ndarray:
    if size <= 0:
        return a
    h, w = a.shape
    y0, x0 = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return a[y0:y0 + size, x0:x0 + size]


# -- loss --------------------------------------------------------------------------------------

class _Loss(nn.Module):
    """smp losses behind one call: ``loss(logits, target (N, H, W) long)``, binary or multi-class."""

    def __init__(self, name: str, n_classes: int):
        super().__init__()
        from segmentation_models_pytorch import losses as L

        self.binary = n_classes == 2
        mode = "binary" if self.binary else "multiclass"
        self.parts = nn.ModuleList()
        for part in name.split("+"):
            if part == "bce":
                self.parts.append(L.SoftBCEWithLogitsLoss() if self.binary else nn.CrossEntropyLoss())
            elif part == "dice":
                self.parts.append(L.DiceLoss(mode, from_logits=True))
            elif part == "jaccard":
                self.parts.append(L.JaccardLoss(mode, from_logits=True))
            elif part == "focal":
                self.parts.append(L.FocalLoss(mode))
            else:
                raise ValueError(f"unknown loss {part!r}")

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        t = target[:, None].float() if self.binary else target
        return sum(part(logits, t) for part in self.parts)


def _lr_at(cfg: TrainConfig, step: int) -> float:
    """Learning rate at global optimisation step ``step`` (0-based)."""
    if cfg.scheduler == "none":
        return cfg.lr
    total = max(1, cfg.epochs * cfg.steps_per_epoch)
    t = min(1.0, step / total)
    lo = cfg.lr * _FINAL_LR_RATIO
    return lo + 0.5 * (cfg.lr - lo) * (1.0 + math.cos(math.pi * t))


def _make_optimizer(cfg: TrainConfig, params: Any) -> torch.optim.Optimizer:
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)


def _autocast(device: torch.device, dtype: torch.dtype | None) -> Any:
    """Mixed precision when ``dtype`` is given, else a no-op context."""
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


# -- the job -----------------------------------------------------------------------------------

class _Stopped(Exception):
    """Raised inside the worker when a stop was requested."""


def _new_run_id(dataset: str) -> str:
    return validate_name(f"{dataset[:40]}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}")


def _resolve_checkpoint(ws: Workspace, resume: str | Path) -> tuple[Path, str]:
    """``(checkpoint path, source run id or "")`` for a run id or a checkpoint path."""
    text = str(resume)
    run = ws.catalog.run(text) if "/" not in text and "\\" not in text else None
    if run is not None:
        if run["state"] in _ACTIVE_STATES:
            raise ValueError(f"run {text!r} is still {run['state']} (process {run['owner_pid']} on "
                             f"{run['owner_host']}); stop it first, or resume it once it has stopped")
        for key in ("last_checkpoint", "best_checkpoint"):
            if run.get(key) and Path(run[key]).is_file():
                return Path(run[key]), text
        if run["state"] == "interrupted":
            raise ValueError(f"run {text!r} was interrupted before its first epoch ended: it has no checkpoint "
                             "to resume from; start a new training")
        raise ValueError(f"run {text!r} has no checkpoint to resume from")
    path = Path(text)
    if path.is_file():
        return path, ""
    raise ValueError(f"cannot resume from {text!r}: neither a run id of this workspace nor a checkpoint file")


def _disk_full(exc: BaseException, folder: Path) -> bool:
    """``exc`` comes from a full disk: ENOSPC, or torch's ``inline_container`` write failure (which
    does not keep the errno) while the folder has little space left."""
    if is_disk_full(exc) or (isinstance(exc, ValueError) and str(exc).startswith("not enough space")):
        return True
    text = str(exc).lower()
    if isinstance(exc, RuntimeError) and ("write failed" in text or "inline_container" in text
                                          or "unexpected pos" in text):
        try:
            return shutil.disk_usage(folder).free < 64 << 20
        except OSError:
            return False
    return False


def _oom_hint(exc: BaseException, cfg: TrainConfig, folder: Path | None = None) -> str:
    if folder is not None and _disk_full(exc, folder):
        if str(exc).startswith("not enough space"):
            return str(exc)
        return f"{disk_full_error(folder)} (a checkpoint of this run could not be saved)"
    text = f"{type(exc).__name__}: {exc}".strip()
    oom = isinstance(exc, getattr(torch.cuda, "OutOfMemoryError", ())) or "out of memory" in text.lower()
    if oom:
        return (f"the GPU ran out of memory: lower the batch size (now {cfg.batch_size}) or the patch size "
                f"(now {cfg.patch_size}). ({text.splitlines()[0][:300]})")
    if isinstance(exc, ValueError) and str(exc):
        return str(exc)  # our own messages are written for the user already
    return text


def _finite(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


class TrainingJob:
    """One training run in a background thread.

    Args:
        workspace: the workspace (a :class:`~core.store.workspace.Workspace` or its folder).
        dataset: dataset name; its labeled slices are used.
        config: the training config (its model's ``n_classes`` is replaced by the dataset's).
        run_id: run id; default ``<dataset>-<date>-<time>-<random>``.
        resume_from: a run id or a checkpoint path to continue from (see module docstring).

    Raises:
        ValueError: unknown dataset, no labeled slices, unusable checkpoint, or a checkpoint that
            has already reached ``config.epochs``.

    Start it through :func:`registry` (``registry().start(job)``), which refuses a second running job
    in the same workspace; then poll :meth:`snapshot`.
    """

    def __init__(self, workspace: Workspace | str | Path, dataset: str, config: TrainConfig | None = None,
                 run_id: str | None = None, resume_from: str | Path | None = None):
        self.workspace = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
        info = self.workspace.dataset(dataset)
        self.dataset = dataset
        if not self.workspace.labeled_slices(dataset):
            raise ValueError(f"dataset {dataset!r} has no labeled slices; label at least one slice first")
        config = config or default_config(info.n_classes)
        self.resume_path: Path | None = None
        self.resumed_from = ""
        start_epoch = 0
        if resume_from is not None:
            self.resume_path, self.resumed_from = _resolve_checkpoint(self.workspace, resume_from)
            meta = read_checkpoint_info(self.resume_path)
            if len(meta["class_names"]) != info.n_classes:
                raise ValueError(f"checkpoint {self.resume_path} has {len(meta['class_names'])} classes, dataset "
                                 f"{dataset!r} has {info.n_classes}")
            start_epoch = int(meta["epoch"])
            if start_epoch >= config.epochs:
                raise ValueError(f"the checkpoint has reached epoch {start_epoch} of {config.epochs}; "
                                 f"set epochs above {start_epoch} to train longer")
            self.resumed_from = self.resumed_from or str(meta["run_id"] or self.resume_path)
            config = replace(config, model=meta["model_config"])
        self.config = replace(config, model=replace(config.model, n_classes=info.n_classes))
        self.class_names = info.class_names
        self.run_id = validate_name(run_id) if run_id else _new_run_id(dataset)
        if self.workspace.catalog.run(self.run_id) is not None:
            raise ValueError(f"a run named {self.run_id!r} exists already")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._snap: dict[str, Any] = {
            "run_id": self.run_id, "dataset": dataset, "state": "queued", "error": "", "epoch": start_epoch,
            "start_epoch": start_epoch, "epochs": self.config.epochs, "step": 0,
            "steps_per_epoch": self.config.steps_per_epoch, "eta_s": None, "device": "", "history": [],
            "best_dice": None, "best_checkpoint": "", "last_checkpoint": "", "resumed_from": self.resumed_from,
            "train_slices": [], "val_slices": [], "notes": [], "wall_time_s": 0.0, "bundle": "",
        }

    def __repr__(self) -> str:
        return f"TrainingJob({self.run_id!r}, state={self.state!r})"

    # -- control (any thread) --------------------------------------------------------------
    @property
    def state(self) -> str:
        with self._lock:
            return self._snap["state"]

    def start(self) -> TrainingJob:
        """Record the run in the catalog and launch the worker thread (once)."""
        if self._thread is not None:
            raise ValueError(f"job {self.run_id} was started already")
        extra = {"resumed_from": self.resumed_from} if self.resumed_from else {}
        self.workspace.catalog.create_run(self.run_id, self.dataset, self.config.to_dict(), state="queued")
        if extra:
            self.workspace.catalog.update_run(self.run_id, extra=extra)
        self._thread = threading.Thread(target=self._run, name=f"segdash-train-{self.run_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the worker to stop; it does so within one optimisation step and keeps ``last.pt``."""
        self._stop.set()
        with self._lock:
            if self._snap["state"] in ("queued", "running"):
                self._snap["state"] = "stopping"

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker; returns True when it has finished."""
        if self._thread is None:
            return self.state not in _ACTIVE_STATES
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def is_active(self) -> bool:
        """True while the worker thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def snapshot(self) -> dict[str, Any]:
        """A copy of the job's progress (safe to keep and to read from any thread).

        Keys: ``run_id``, ``dataset``, ``state`` (one of :data:`JOB_STATES`), ``error``, ``epoch``
        (last completed), ``epochs``, ``step`` (within the current epoch), ``steps_per_epoch``,
        ``eta_s``, ``device``, ``history`` (per-epoch dicts: ``epoch, train_loss, val_loss,
        val_dice, val_iou, val_accuracy, val_pixel_error, val_dice_per_class, val_iou_per_class,
        lr, images_per_s, time_s`` and for binary data ``val_dice_fg, val_iou_fg``), ``best_dice``,
        ``best_checkpoint``, ``last_checkpoint``, ``resumed_from``, ``train_slices``, ``val_slices``,
        ``notes``, ``wall_time_s``, ``bundle``.
        """
        with self._lock:
            snap = dict(self._snap)
            snap["history"] = [dict(h) for h in self._snap["history"]]
            snap["notes"] = list(self._snap["notes"])
        return snap

    # -- worker ----------------------------------------------------------------------------
    def _set(self, **values: Any) -> None:
        with self._lock:
            if values.get("state") == "running" and self._snap["state"] == "stopping":
                values.pop("state")
            self._snap.update(values)

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise _Stopped()

    def _run(self) -> None:
        t0 = time.time()
        self._t0 = t0
        cat = self.workspace.catalog
        final: dict[str, Any] = {}
        heartbeat = threading.Event()  # set: stop beating
        threading.Thread(target=self._beat, args=(heartbeat,), name=f"segdash-heartbeat-{self.run_id}",
                         daemon=True).start()
        try:
            self._set(state="running")
            cat.update_run(self.run_id, state="running")
            self._train()
            final = {"state": "done"}  # every epoch ran (a stop that came after the last step changes nothing)
        except _Stopped:
            final = {"state": "stopped"}
        except Exception as exc:  # noqa: BLE001 - every error becomes the job's failed state
            if _disk_full(exc, self.workspace.root):  # the user's to fix: no traceback in the server log
                log.warning("training run %s failed: the disk is full (%s)", self.run_id, exc)
            else:
                log.exception("training run %s failed", self.run_id)
            final = {"state": "failed", "error": _oom_hint(exc, self.config, self.workspace.root)}
        finally:
            heartbeat.set()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        wall = time.time() - t0
        snap = self.snapshot()
        bundle = ""
        record = {"wall_time": wall, "best_checkpoint": snap["best_checkpoint"],
                  "last_checkpoint": snap["last_checkpoint"], "best_dice": _finite(snap["best_dice"])}
        try:
            cat.update_run(self.run_id, state=final["state"], error=final.get("error", ""), **record)
            if snap["last_checkpoint"] or snap["best_checkpoint"]:
                bundle = str(write_bundle(self.workspace, self.run_id))
        except Exception as exc:  # noqa: BLE001
            log.exception("finishing run %s", self.run_id)
            if final["state"] != "failed":
                why = _oom_hint(exc, self.config, self.workspace.root)
                final = {"state": "failed", "error": f"finishing the run failed: {why}"}
            if _disk_full(exc, self.workspace.root):  # the catalog too: write the outcome once there is room
                record.update(state=final["state"], error=final.get("error", ""))
                threading.Thread(target=self._record_later, args=(record,), daemon=True,
                                 name=f"segdash-record-{self.run_id}").start()
        self._set(wall_time_s=wall, bundle=bundle, eta_s=0.0, **final)

    def _record_later(self, record: dict[str, Any]) -> None:
        """Retry writing the run's outcome for ten minutes (a full disk may be freed meanwhile); after
        that the run reads as interrupted, its heartbeat being stale."""
        for _ in range(int(600 / _HEARTBEAT_S)):
            time.sleep(_HEARTBEAT_S)
            try:
                self.workspace.catalog.update_run(self.run_id, **record)
                return
            except Exception:  # noqa: BLE001 - still full or busy
                continue

    def _beat(self, done: threading.Event) -> None:
        """Write the run's heartbeat until ``done``: while it beats, the run is not interrupted.
        A stop requested through the catalog (:meth:`~core.store.catalog.Catalog.request_stop`, from
        another process) is read here too."""
        while not done.wait(_HEARTBEAT_S):
            try:
                self.workspace.catalog.heartbeat(self.run_id)
                if (self.workspace.catalog.run(self.run_id) or {}).get("stop_requested"):
                    self.stop()
            except Exception:  # noqa: BLE001 - a busy or full catalog: try again at the next beat
                log.debug("heartbeat of %s failed", self.run_id, exc_info=True)

    def _train(self) -> None:
        cfg, ws, ds = self.config, self.workspace, self.dataset
        cat = ws.catalog
        info = ws.dataset(ds)
        n_classes = info.n_classes
        labeled = ws.labeled_slices(ds)
        if not labeled:
            raise ValueError(f"dataset {ds!r} has no labeled slices; label at least one slice first")
        ckpt = load_checkpoint(self.resume_path) if self.resume_path else None
        notes: list[str] = []

        # split and normalisation window
        if ckpt is not None:
            old_val = [z for z in ckpt.extra.get("val_slices", []) if z in labeled]
            if old_val and len(old_val) < len(labeled):
                val_zs = old_val
                train_zs = [z for z in labeled if z not in set(old_val)]
            else:
                train_zs, val_zs = split_slices(labeled, cfg.val_fraction, cfg.seed)
            window = ckpt.norm_window
        else:
            train_zs, val_zs = split_slices(labeled, cfg.val_fraction, cfg.seed)
            window = percentile_range(ws.read_images(ds))
        if not val_zs:
            val_zs = list(train_zs)
            notes.append("only one labeled slice: validation uses the training slice")
        names = info.slice_names
        self._set(train_slices=list(train_zs), val_slices=list(val_zs), notes=notes)
        dataset_version = ws.masks_version(ds, sorted(set(train_zs) | set(val_zs)))
        extra = {"resumed_from": self.resumed_from, "train_slices": train_zs, "val_slices": val_zs,
                 "train_names": [names[z] for z in train_zs], "val_names": [names[z] for z in val_zs],
                 "norm_window": list(window), "class_names": list(self.class_names)}
        if not self.resumed_from:
            extra.pop("resumed_from")

        # device
        device = select_device(cfg.device)
        cuda = device.type == "cuda"
        amp_dtype = amp_dtype_for(device, cfg.amp)
        label = device_label(device) + (f", {str(amp_dtype).removeprefix('torch.')} autocast" if amp_dtype else "")
        self._set(device=label)
        cat.update_run(self.run_id, device=label, dataset_version=dataset_version, extra=extra)
        self._check_stop()

        # data in memory: raw slices (normalised per patch), padded to at least one patch
        stack = ws.read_images(ds)
        ps = cfg.patch_size
        tr_imgs = [_pad_to(np.array(stack[z]), ps, ps) for z in train_zs]
        _, tr_masks_arr = ws.read_masks(ds, train_zs)
        tr_masks = [_pad_to(m, ps, ps) for m in tr_masks_arr]
        mult = required_multiple(cfg.model)
        val_items = self._validation_tensors(stack, val_zs, window, mult)
        self._check_stop()

        # model and optimisation
        torch.manual_seed(cfg.seed)
        # a resumed model gets its weights from the checkpoint: never download pretrained ones for it
        model = build_model(cfg.model if ckpt is None else replace(cfg.model, encoder_weights=None)).to(device)
        if cuda:
            torch.backends.cudnn.benchmark = True
        channels_last = uses_channels_last(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        optimizer = _make_optimizer(cfg, model.parameters())
        scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
        loss_fn = _Loss(cfg.loss, n_classes)
        history: list[dict[str, Any]] = []
        start_epoch = 0
        best = -math.inf
        run_dir = ws.run_dir(self.run_id)
        best_path, last_path = run_dir / "best.pt", run_dir / "last.pt"
        if ckpt is not None:
            model.load_state_dict(ckpt.model.state_dict())
            if ckpt.state.get("optimizer"):
                optimizer.load_state_dict(ckpt.state["optimizer"])
                for g in optimizer.param_groups:  # the new config's hyper-parameters win
                    g["lr"], g["weight_decay"] = cfg.lr, cfg.weight_decay
            if ckpt.state.get("scaler") and scaler.is_enabled():
                scaler.load_state_dict(ckpt.state["scaler"])
            history = [dict(h) for h in ckpt.history]
            start_epoch = ckpt.epoch
            for h in history:
                cat.add_epoch(self.run_id, int(h["epoch"]), {k: v for k, v in h.items() if k != "epoch"})
            dice = [h.get("val_dice") for h in history if _finite(h.get("val_dice")) is not None]
            src_best = Path(ckpt.path).with_name("best.pt") if ckpt.path else None
            if dice and src_best is not None and src_best.is_file():
                shutil.copyfile(src_best, best_path)
                best = max(dice)
                self._set(best_dice=best, best_checkpoint=str(best_path))
                cat.update_run(self.run_id, best_checkpoint=str(best_path), best_dice=best)
            del ckpt
        self._set(history=[dict(h) for h in history], epoch=start_epoch)

        def save(path: Path, epoch: int, metrics: dict[str, Any], partial: bool) -> None:
            save_checkpoint(path, model, cfg.model, class_names=self.class_names, norm_window=window,
                            patch_size=ps, epoch=epoch, metrics=metrics, optimizer=optimizer,
                            scheduler={"name": cfg.scheduler, "step": global_step,
                                       "total_steps": cfg.epochs * cfg.steps_per_epoch},
                            scaler=scaler if scaler.is_enabled() else None, history=history,
                            run_id=self.run_id,
                            extra={**extra, "train_config": cfg.to_dict(), "dataset": ds,
                                   "dataset_version": dataset_version, "partial_epoch": partial})

        step_times: list[float] = []
        val_times: list[float] = []
        global_step = start_epoch * cfg.steps_per_epoch
        epoch = start_epoch
        try:
            for epoch in range(start_epoch + 1, cfg.epochs + 1):
                t_epoch = time.time()
                self._set(epoch=epoch - 1, step=0)
                rng = np.random.default_rng([cfg.seed, epoch])
                coords = _patch_coords(tr_masks, ps, cfg.steps_per_epoch * cfg.batch_size, rng,
                                       cfg.skip_empty_patches)
                loader = torch.utils.data.DataLoader(
                    _PatchDataset(tr_imgs, tr_masks, coords, ps, window), batch_size=cfg.batch_size,
                    shuffle=False, num_workers=cfg.num_workers, pin_memory=cuda, drop_last=False)
                aug_gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
                model.train()
                loss_sum, n_seen, t_train = 0.0, 0, 0.0
                for step, (x, y) in enumerate(loader, start=1):
                    self._check_stop()
                    t_step = time.time()
                    x = x.to(device, non_blocking=cuda)
                    y = y.to(device, non_blocking=cuda)
                    x, y = augment_batch(x, y, cfg.augment, generator=aug_gen)
                    if channels_last:
                        x = x.contiguous(memory_format=torch.channels_last)
                    lr = _lr_at(cfg, global_step)
                    for g in optimizer.param_groups:
                        g["lr"] = lr
                    with _autocast(device, amp_dtype):
                        logits = model(x)
                    loss = loss_fn(logits, y)
                    if not torch.isfinite(loss):
                        raise ValueError(f"the loss became {loss.item()} at epoch {epoch}, step {step}; "
                                         "lower the learning rate")
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                    global_step += 1
                    loss_sum += float(loss.detach()) * x.shape[0]
                    n_seen += x.shape[0]
                    dt = time.time() - t_step
                    t_train += dt
                    step_times.append(dt)
                    self._set(step=step, eta_s=self._eta(step_times, val_times, epoch, step, len(val_items)))
                t_val = time.time()
                scores = self._validate(model, val_items, loss_fn, n_classes, device, amp_dtype)
                val_times.append(time.time() - t_val)
                row = {
                    "epoch": epoch, "train_loss": loss_sum / max(n_seen, 1), "val_loss": scores["loss"],
                    "val_dice": scores["mean_dice"], "val_iou": scores["mean_iou"],
                    "val_accuracy": scores["accuracy"], "val_pixel_error": scores["pixel_error"],
                    "val_dice_per_class": scores["dice"], "val_iou_per_class": scores["iou"],
                    "lr": optimizer.param_groups[0]["lr"], "images_per_s": n_seen / max(t_train, 1e-9),
                    "time_s": time.time() - t_epoch,
                }
                if n_classes == 2:
                    row["val_dice_fg"], row["val_iou_fg"] = scores["dice_fg"], scores["iou_fg"]
                history.append(row)
                cat.add_epoch(self.run_id, epoch, {k: v for k, v in row.items() if k != "epoch"})
                save(last_path, epoch, row, partial=False)
                updates: dict[str, Any] = {"last_checkpoint": str(last_path)}
                if math.isfinite(row["val_dice"]) and row["val_dice"] > best:
                    best = row["val_dice"]
                    save(best_path, epoch, row, partial=False)
                    updates.update(best_checkpoint=str(best_path), best_dice=best)
                cat.update_run(self.run_id, wall_time=time.time() - self._t0, **updates)
                self._set(epoch=epoch, history=[dict(h) for h in history],
                          eta_s=self._eta(step_times, val_times, epoch + 1, 0, len(val_items)),
                          **{k: v for k, v in updates.items()})
        except _Stopped:
            # keep the weights reached: last.pt with the last completed epoch's count
            metrics = dict(history[-1]) if history else {}
            save(last_path, len(history) and int(history[-1]["epoch"]), metrics, partial=True)
            self._set(last_checkpoint=str(last_path))
            cat.update_run(self.run_id, last_checkpoint=str(last_path))
            raise

    def _eta(self, step_times: list[float], val_times: list[float], epoch: int, step: int, n_val: int) -> float:
        cfg = self.config
        recent = step_times[-50:]
        per_step = sum(recent) / len(recent) if recent else 0.0
        per_val = (sum(val_times) / len(val_times)) if val_times else per_step * max(1, n_val) / 4
        remaining_steps = (cfg.epochs - epoch) * cfg.steps_per_epoch + (cfg.steps_per_epoch - step)
        remaining_vals = cfg.epochs - epoch + 1
        return max(0.0, remaining_steps * per_step + remaining_vals * per_val)

    def _validation_tensors(self, stack: np.ndarray, zs: list[int], window: tuple[float, float],
                            mult: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(padded image (1, 1, H', W'), mask (1, H, W)) per validation slice, centre-cropped."""
        _, masks = self.workspace.read_masks(self.dataset, zs)
        items = []
        for z, m in zip(zs, masks):
            img = normalize(_center_crop(np.asarray(stack[z]), self.config.val_crop), window)
            m = _center_crop(m, self.config.val_crop)
            h, w = img.shape
            img = _pad_to(img, -(-h // mult) * mult, -(-w // mult) * mult)
            items.append((torch.from_numpy(np.ascontiguousarray(img))[None, None],
                          torch.from_numpy(m.astype(np.int64))[None]))
        return items

    def _validate(self, model: nn.Module, items: list[tuple[torch.Tensor, torch.Tensor]], loss_fn: _Loss,
                  n_classes: int, device: torch.device, amp_dtype: torch.dtype | None) -> dict[str, Any]:
        model.eval()
        acc = ConfusionAccumulator(n_classes)
        loss_sum, n = 0.0, 0
        cuda = device.type == "cuda"
        with torch.inference_mode():
            for img, mask in items:
                self._check_stop()
                x = img.to(device, non_blocking=cuda)
                if uses_channels_last(device):
                    x = x.contiguous(memory_format=torch.channels_last)
                y = mask.to(device, non_blocking=cuda)
                with _autocast(device, amp_dtype):
                    logits = model(x)
                logits = logits[..., :y.shape[-2], :y.shape[-1]].float()
                loss_sum += float(loss_fn(logits, y)) * y.numel()
                n += y.numel()
                acc.update(labels_from_logits(logits, n_classes), y)
        model.train()
        return {**acc.compute(), "loss": loss_sum / max(n, 1)}


# -- registry ----------------------------------------------------------------------------------

def _root_of(workspace: Workspace | str | Path) -> Path:
    root = workspace.root if isinstance(workspace, Workspace) else Path(workspace)
    return Path(root).resolve()


class JobRegistry:
    """Process-wide record of training jobs: at most one running job per workspace.

    The dashboard keeps it across reruns and sessions (one per process), so a second browser tab
    sees the job the first one started.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, TrainingJob] = {}

    def start(self, job: TrainingJob) -> TrainingJob:
        """Register and start ``job``.

        Raises:
            ValueError: a job is already running in the same workspace.
        """
        with self._lock:
            running = self._active(_root_of(job.workspace))
            if running is not None:
                raise ValueError(f"a training job is already running for this workspace: {running.run_id}")
            self._jobs[job.run_id] = job
            try:
                job.start()
            except BaseException:
                del self._jobs[job.run_id]
                raise
        return job

    def get(self, run_id: str) -> TrainingJob | None:
        with self._lock:
            return self._jobs.get(run_id)

    def active(self, workspace_root: Workspace | str | Path) -> TrainingJob | None:
        """The queued, running or stopping job of that workspace, if any."""
        with self._lock:
            return self._active(_root_of(workspace_root))

    def _active(self, root: Path) -> TrainingJob | None:
        for job in self._jobs.values():
            if _root_of(job.workspace) == root and job.is_active():
                return job
        return None

    def jobs(self) -> list[TrainingJob]:
        """All jobs of this process, oldest first."""
        with self._lock:
            return list(self._jobs.values())


_REGISTRY = JobRegistry()


def registry() -> JobRegistry:
    """The process-wide :class:`JobRegistry`."""
    return _REGISTRY


# -- headless ----------------------------------------------------------------------------------

def job_progress(snapshot: dict[str, Any]) -> tuple[int, int]:
    """``(steps done, steps in all)`` of a job :meth:`TrainingJob.snapshot`, counted from its start
    (a resumed job counts from the epoch it resumed at), for progress bars."""
    spe = max(1, int(snapshot.get("steps_per_epoch") or 1))
    start = int(snapshot.get("start_epoch") or 0)
    total = max(1, int(snapshot.get("epochs") or 1) - start) * spe
    done = (int(snapshot.get("epoch") or 0) - start) * spe + int(snapshot.get("step") or 0) % spe
    return min(total, max(0, done)), total


def train_headless(workspace: Workspace | str | Path, dataset: str, *, epochs: int | None = None,
                   config: TrainConfig | dict[str, Any] | None = None, resume: str | None = None,
                   progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train without the UI, through the same :class:`TrainingJob` the dashboard uses, and wait.

    Args:
        workspace: workspace or its folder.
        dataset: dataset name.
        epochs: final epoch number (overrides the config).
        config: a :class:`TrainConfig`, or a partial dict of overrides (on the recipe; when resuming,
            on the resumed run's config).
        resume: run id (or checkpoint path) to continue from.
        progress: called with :meth:`TrainingJob.snapshot` whenever the step, epoch or state changes.

    Returns:
        JSON-able summary: ``run_id, state, epochs, val_dice, val_iou, val_accuracy, val_dice_fg,
        best_dice, best_checkpoint, last_checkpoint, bundle, device, wall_time_s, error``.
        Ctrl-C stops the job cleanly (state ``stopped``).

    Raises:
        ValueError: bad config, unknown dataset, nothing to resume, a job already running.
    """
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    if isinstance(config, TrainConfig):
        cfg = config
    else:
        base = None
        if resume is not None:
            path, _ = _resolve_checkpoint(ws, resume)
            stored = read_checkpoint_info(path)["extra"].get("train_config")
            base = TrainConfig.from_dict(stored) if stored else None
        if base is None:
            base = default_config(ws.dataset(dataset).n_classes)
        cfg = TrainConfig.from_dict(config or {}, base=base)
    if epochs is not None:
        cfg = replace(cfg, epochs=epochs)
    job = registry().start(TrainingJob(ws, dataset, cfg, resume_from=resume))
    last_key = None
    try:
        while not job.join(0.2):
            if progress is not None:
                snap = job.snapshot()
                key = (snap["state"], snap["epoch"], snap["step"])
                if key != last_key:
                    last_key = key
                    progress(snap)
    except KeyboardInterrupt:
        job.stop()
        job.join()
    except BaseException:
        job.stop()
        job.join()
        raise
    snap = job.snapshot()
    if progress is not None:
        progress(snap)
    return _summary(snap)


def _summary(snap: dict[str, Any]) -> dict[str, Any]:
    last = snap["history"][-1] if snap["history"] else {}
    return {
        "run_id": snap["run_id"], "state": snap["state"], "epochs": snap["epoch"],
        "val_dice": _finite(last.get("val_dice")), "val_iou": _finite(last.get("val_iou")),
        "val_accuracy": _finite(last.get("val_accuracy")), "val_dice_fg": _finite(last.get("val_dice_fg")),
        "best_dice": _finite(snap["best_dice"]), "best_checkpoint": snap["best_checkpoint"],
        "last_checkpoint": snap["last_checkpoint"], "bundle": snap["bundle"], "device": snap["device"],
        "wall_time_s": round(float(snap["wall_time_s"]), 3), "error": snap["error"],
    }


# -- reproducibility bundle --------------------------------------------------------------------

def _package_versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for mod in ("torch", "torchvision", "segmentation_models_pytorch", "kornia", "monai", "numpy", "tifffile"):
        try:
            out[mod] = str(__import__(mod).__version__)
        except Exception:  # noqa: BLE001 - a missing optional package is simply not listed
            continue
    return out


_CSV_COLUMNS = ("epoch", "train_loss", "val_loss", "val_dice", "val_iou", "val_accuracy", "val_pixel_error",
                "val_dice_fg", "val_iou_fg", "lr", "images_per_s", "time_s")


def write_bundle(workspace: Workspace | str | Path, run_id: str) -> Path:
    """Write ``bundle.zip`` in the run folder: everything needed to reproduce or reuse the run.

    Members: ``config.json`` (training config, dataset, dataset version, device, class names,
    normalisation window, resumed_from), ``metrics.csv`` (one row per epoch, per-class Dice as
    ``val_dice_<class>``), ``model.pt`` (best weights as a SegDash checkpoint without optimizer
    state; :func:`~core.nn.checkpoint.load_checkpoint` reads it), ``splits.json`` (training and
    validation slice names and indices), ``versions.json`` (Python and package versions).

    Returns:
        path of the bundle.
    """
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    run = ws.catalog.run(run_id)
    if run is None:
        raise ValueError(f"no run named {run_id!r} in {ws.root}")
    extra = run.get("extra") or {}
    epochs = ws.catalog.epochs(run_id)
    ckpt_path = next((Path(run[k]) for k in ("best_checkpoint", "last_checkpoint")
                      if run.get(k) and Path(run[k]).is_file()), None)
    class_names = list(extra.get("class_names") or [])
    model_bytes = b""
    if ckpt_path is not None:
        obj = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        for key in ("optimizer", "scheduler", "scaler"):
            obj[key] = None
        buf = io.BytesIO()
        torch.save(obj, buf)
        model_bytes = buf.getvalue()
        class_names = class_names or list(obj.get("class_names") or [])
    config = {
        "run_id": run_id, "dataset": run["dataset"], "dataset_version": run["dataset_version"],
        "state": run["state"], "device": run["device"], "created": run["created"], "wall_time_s": run["wall_time"],
        "best_dice": run["best_dice"], "class_names": class_names, "norm_window": extra.get("norm_window"),
        "resumed_from": extra.get("resumed_from", ""), "checkpoint": ckpt_path.name if ckpt_path else "",
        "train_config": run["config"],
    }
    splits = {"train": extra.get("train_names", []), "val": extra.get("val_names", []),
              "train_z": extra.get("train_slices", []), "val_z": extra.get("val_slices", [])}
    csv_buf = io.StringIO()
    per_class = [f"val_dice_{c}" for c in class_names]
    writer = csv.writer(csv_buf)
    writer.writerow([*_CSV_COLUMNS, *per_class])
    for e in epochs:
        dice_pc = list(e.get("val_dice_per_class") or [])
        writer.writerow([e.get(c, "") for c in _CSV_COLUMNS] +
                        [dice_pc[i] if i < len(dice_pc) else "" for i in range(len(per_class))])

    def write(fh: Any) -> None:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("config.json", json.dumps(config, indent=2, default=str))
            zf.writestr("metrics.csv", csv_buf.getvalue())
            zf.writestr("splits.json", json.dumps(splits, indent=2))
            zf.writestr("versions.json", json.dumps(_package_versions(), indent=2))
            if model_bytes:
                zf.writestr("model.pt", model_bytes, compress_type=zipfile.ZIP_STORED)

    return atomic_write(ws.run_dir(run_id) / "bundle.zip", write)
