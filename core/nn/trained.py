"""A trained network loaded with what is needed to use or resume it: :class:`Checkpoint`, what
:func:`core.nn.checkpoint.load_checkpoint` and :func:`core.nn.bioimageio.load_package` both return
(apart from both, so neither imports the other back)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from .decision import Decision
from .model import ModelConfig

__all__ = ["Checkpoint"]


@dataclass
class Checkpoint:
    """A loaded checkpoint.

    Attributes:
        model: the network, in eval mode, on the requested device.
        model_config: how to rebuild it.
        class_names: one name per class index.
        norm_window: ``(lo, hi)`` intensity window; feed the network ``normalize(image, norm_window)``.
        patch_size: training patch size.
        epoch: epochs completed when saved.
        metrics: metrics of that epoch.
        history: one dict per epoch so far.
        run_id: the training run that wrote it.
        state: the raw dict as loaded (optimizer / scheduler / scaler state for resuming, ``extra``).
        path: the file it was read from.
    """

    model: nn.Module
    model_config: ModelConfig
    class_names: tuple[str, ...]
    norm_window: tuple[float, float]
    patch_size: int
    epoch: int
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    run_id: str
    state: dict[str, Any] = field(repr=False)
    path: Path | None = None

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def extra(self) -> dict[str, Any]:
        return dict(self.state.get("extra") or {})

    @property
    def decision(self) -> Decision:
        """How its probabilities become labels (tuned on validation; defaults for older files)."""
        return Decision.from_dict(self.state.get("decision"))

    @property
    def context(self) -> int:
        """2.5D context: neighbours each side fed as channels (0: the slice alone)."""
        return int(self.state.get("context") or 0)
