"""The run the handlers record into: :class:`RunContext`, what every recording handler of
:mod:`core.train.handlers` knows of the run (workspace, run id, config, window, the run's ``extra``,
where its checkpoints go, what the epoch changed) and the writes they share: a checkpoint of the
training state (:meth:`RunContext.save`) and a resumed run's ``best.pt`` copied as its own."""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from ..nn.checkpoint import save_checkpoint
from ..store.layout import BEST, LAST
from ..store.workspace import Workspace
from .config import TrainConfig

__all__ = ["RunContext"]


@dataclass
class RunContext:
    """A run as its handlers see it.

    Args:
        workspace: the workspace.
        run_id: the run, already in the catalog.
        dataset: the dataset trained on.
        config: the run's config (stored in the checkpoints, with the epochs planned so far).
        class_names: the dataset's class names.
        window: the normalisation window.
        extra: the run's ``extra`` record (split, window, resumed_from), stored in the checkpoints.
        dataset_version: the masks' version stamp.
        publish: called with snapshot fields (``epoch``, ``step``, ``eta_s``, ``history``, checkpoints).
        started: ``time.time()`` at the run's start (for ``wall_time``).

    Attributes:
        best: the best validation Dice so far; ``best_path``, ``last_path``: the run's checkpoints.
        updates: what the epoch (or the stop) changed of the run's row: ``last_checkpoint``, and
            ``best_checkpoint`` and ``best_dice`` when it improved; written by the checkpoint
            handler, recorded and published by the ones after it.
    """

    workspace: Workspace
    run_id: str
    dataset: str
    config: TrainConfig
    class_names: tuple[str, ...]
    window: tuple[float, float]
    extra: dict[str, Any]
    dataset_version: str
    publish: Callable[..., None]
    started: float
    best: float = -math.inf
    updates: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        run_dir = self.workspace.run_dir(self.run_id)
        self.best_path, self.last_path = run_dir / BEST, run_dir / LAST

    def save(self, state: Any, path: Path, epoch: int, metrics: dict[str, Any], partial: bool) -> None:
        """Write a checkpoint of ``state`` (:class:`~core.train.loop.FitState`) at ``path`` (atomic)."""
        cfg = replace(self.config, epochs=state.epochs or self.config.epochs)  # the plan so far
        save_checkpoint(
            path,
            state.model,
            cfg.model,
            class_names=self.class_names,
            norm_window=self.window,
            patch_size=cfg.patch_size,
            epoch=epoch,
            metrics=metrics,
            optimizer=state.optimizer,
            scheduler={
                "name": cfg.scheduler,
                "step": state.global_step,
                "total_steps": cfg.epochs * cfg.steps_per_epoch,
            },
            scaler=state.scaler if state.scaler.is_enabled() else None,
            history=state.history,
            run_id=self.run_id,
            context=cfg.context,
            extra={
                **self.extra,
                "train_config": cfg.to_dict(),
                "dataset": self.dataset,
                "dataset_version": self.dataset_version,
                "partial_epoch": partial,
            },
        )

    def copy_best(self, source: Path) -> None:
        """A resumed run's ``best.pt`` (``source``) as this run's best so far."""
        shutil.copyfile(source, self.best_path)
