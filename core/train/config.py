"""Training configuration: :class:`TrainConfig` (every setting of a run besides the data) and the
recommended recipe (:func:`default_config`, see :mod:`core.train`)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from ..data.records import known_keys
from ..errors import SegDashError
from ..nn.augment import AugmentConfig
from ..nn.losses import LOSSES
from ..nn.model import ModelConfig, required_multiple
from .data import SPLITS

__all__ = [
    "LOSSES",
    "SCHEDULERS",
    "OPTIMIZERS",
    "DEVICES",
    "SPLITS",
    "INT_LIMITS",
    "NUMBER_LIMITS",
    "TrainConfig",
    "default_config",
    "model_label",
]

SCHEDULERS = ("cosine", "none")
OPTIMIZERS = ("adamw", "adam", "sgd")
DEVICES = ("auto", "cpu", "cuda", "mps")
#: the bounds :class:`TrainConfig` accepts for its whole-number fields (the Train page's widgets use them too)
INT_LIMITS: dict[str, tuple[int, int]] = {
    "epochs": (1, 100_000),
    "batch_size": (1, 4096),
    "patch_size": (16, 8192),
    "seed": (0, 2**31 - 1),
    "steps_per_epoch": (1, 10_000_000),
    "num_workers": (0, 256),
    "val_crop": (0, 65536),
    "val_gap": (0, 1000),
    "context": (0, 8),
}
#: the bounds of its real-number fields
NUMBER_LIMITS: dict[str, tuple[float, float]] = {
    "lr": (1e-8, 10.0),
    "weight_decay": (0.0, 10.0),
    "edge_weight": (0.0, 100.0),
    "val_fraction": (0.0, 0.9),
    "minutes": (0.0, 100_000.0),
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs besides the data. Defaults are the recommended recipe.

    Args:
        model: the network (its ``n_classes`` is set from the dataset when training).
        augment: augmentation of training patches.
        loss: a name of :data:`core.nn.losses.LOSSES` (``bce``, ``dice``, ``jaccard``, ``focal`` or
            ``bce+dice``; ``bce`` is cross-entropy for more than two classes); smp losses.
        edge_weight: the cross-entropy of pixels within 2 pixels of another class weighs
            ``1 + edge_weight`` (0: all alike; see :class:`core.nn.losses.Loss`); a ``loss``
            without ``bce`` has nothing for it to weigh.
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
        val_split: ``auto`` (a contiguous block at the end of z for a stack, random for separate
            files), ``block`` or ``random`` (see :func:`core.train.data.plan_split`).
        val_gap: for stacks, training slices within this many slices of a validation or test slice
            are left out, so neighbours never straddle the split (raised to ``context`` if lower).
        val_slices: the validation slices (indices z) chosen by the user; empty: by ``val_split``.
        test_slices: slices (indices z) never trained nor validated on; labeled ones are scored
            with the tuned decisions when the run ends.
        context: 2.5D input: each slice is fed with ``context`` neighbours each side as channels
            (``model.in_channels`` becomes ``2 * context + 1``); 0: the slice alone.
        tune: choose the decision (binary threshold, per-class weights, small-object cleanup) on
            the validation slices when the run ends, and store it in the checkpoints.
        device: ``auto`` (CUDA, else MPS, else CPU), ``cpu``, ``cuda`` or ``mps``.
        minutes: a time budget for the optimisation and the validations; when above 0 the run's
            epochs are planned from the measured epoch times so that the learning-rate schedule
            ends with the budget (:class:`~core.train.budget.TimeBudget`), and ``epochs`` is only
            the first plan; 0: train ``epochs``.

    Example:
        >>> TrainConfig.from_dict({"epochs": 3, "model": {"arch": "classic"}}).model.arch
        'classic'
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    loss: str = "bce+dice"
    edge_weight: float = 0.0
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
    val_split: str = "auto"
    val_gap: int = 2
    val_slices: tuple[int, ...] = ()
    test_slices: tuple[int, ...] = ()
    context: int = 0
    tune: bool = True
    device: str = "auto"
    minutes: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.model, ModelConfig):
            raise SegDashError(f"model must be a ModelConfig, got {type(self.model).__name__}")
        if not isinstance(self.augment, AugmentConfig):
            raise SegDashError(f"augment must be an AugmentConfig, got {type(self.augment).__name__}")
        for name, choices in (
            ("loss", LOSSES),
            ("scheduler", SCHEDULERS),
            ("optimizer", OPTIMIZERS),
            ("device", DEVICES),
            ("val_split", SPLITS),
        ):
            v = getattr(self, name)
            if not isinstance(v, str) or v.lower() not in choices:
                raise SegDashError(f"{name} must be one of {', '.join(choices)}; got {v!r}")
            object.__setattr__(self, name, v.lower())
        for name, (lo, hi) in INT_LIMITS.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise SegDashError(f"{name} must be an integer in {lo}..{hi}, got {v!r}")
        for name, (lo, hi) in NUMBER_LIMITS.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
                raise SegDashError(f"{name} must be a number in {lo:g}..{hi:g}, got {v!r}")
            object.__setattr__(self, name, float(v))
        for name in ("val_slices", "test_slices"):
            v = getattr(self, name)
            if isinstance(v, (str, bytes)) or not isinstance(v, (list, tuple)):
                raise SegDashError(f"{name} must be a list of slice indices, got {v!r}")
            if any(isinstance(z, bool) or not isinstance(z, int) or z < 0 for z in v):
                raise SegDashError(f"{name} must hold slice indices (integers from 0), got {list(v)!r}")
            object.__setattr__(self, name, tuple(sorted(set(v))))
        if self.model.in_channels != 2 * self.context + 1:
            object.__setattr__(self, "model", replace(self.model, in_channels=2 * self.context + 1))
        for name in ("skip_empty_patches", "amp", "tune"):
            if not isinstance(getattr(self, name), bool):
                raise SegDashError(f"{name} must be true or false, got {getattr(self, name)!r}")
        m = required_multiple(self.model)
        if self.patch_size % m:
            raise SegDashError(
                f"patch_size {self.patch_size} must be a multiple of {m} for "
                f"{self.model.describe()} (e.g. {max(m, self.patch_size // m * m)})"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict; ``from_dict(to_dict())`` gives the same config."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["model"] = self.model.to_dict()
        out["augment"] = self.augment.to_dict()
        out["val_slices"], out["test_slices"] = list(self.val_slices), list(self.test_slices)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None, base: TrainConfig | None = None) -> TrainConfig:
        """Config from a partial dict: ``base`` (default: the recipe) with the given values replaced.

        ``model`` and ``augment`` may be partial dicts too (merged into the base's). Unknown keys
        raise ``ValueError``.
        """
        base = base or cls()
        d = known_keys(d, cls, "training")
        if "model" in d and not isinstance(d["model"], ModelConfig):
            if not isinstance(d["model"], dict):
                raise SegDashError("model must be a dict of model settings")
            d["model"] = ModelConfig.from_dict({**base.model.to_dict(), **d["model"]})
        if "augment" in d and not isinstance(d["augment"], AugmentConfig):
            if not isinstance(d["augment"], dict):
                raise SegDashError("augment must be a dict of augmentation settings")
            d["augment"] = AugmentConfig.from_dict({**base.augment.to_dict(), **d["augment"]})
        try:
            return replace(base, **d)
        except TypeError as exc:
            raise SegDashError(f"invalid training settings: {exc}") from None


def default_config(n_classes: int = 2) -> TrainConfig:
    """The recommended recipe (see the module docstring) for data with ``n_classes`` classes.

    The dashboard's training form and ``python -m core train`` start from it; ``TrainConfig()``'s
    own field defaults are the generic ones (smp ``Unet``/``resnet18``, 15 x 50 steps, lr 1e-3).
    """
    return TrainConfig(
        model=ModelConfig(arch="classic", classic_width=16, n_classes=n_classes),
        edge_weight=4.0,
        epochs=20,
        steps_per_epoch=100,
        lr=2e-3,
    )


def model_label(config: dict[str, Any] | None) -> str:
    """What a run's stored config trains, for tables: :meth:`~core.nn.model.ModelConfig.describe`
    (``?`` when the stored model settings are missing or not understood)."""
    model = (config or {}).get("model")
    try:
        return ModelConfig.from_dict(model).describe() if model else "?"
    except (ValueError, TypeError):
        return "?"
