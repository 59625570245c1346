"""Recording a run as it trains: :class:`RunRecorder`, the :class:`~core.train.loop.Callbacks` that
write each epoch into the catalog, save ``last.pt`` and ``best.pt``, and publish progress to the job's
snapshot. The loop calls it; it never drives the loop."""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from ..data.records import finite_or_none
from ..nn.checkpoint import Checkpoint, save_checkpoint
from ..store.layout import BEST, LAST
from ..store.workspace import Workspace
from .config import TrainConfig
from .eta import EtaClock
from .loop import Callbacks, FitState

__all__ = ["RunRecorder"]


class RunRecorder(Callbacks):
    """Writes a training run as it goes: epochs into the catalog, ``last.pt`` after every epoch (and at
    a stop, with the weights reached), ``best.pt`` when the validation Dice improves.

    Args:
        workspace: the workspace.
        run_id: the run, already in the catalog.
        dataset: the dataset trained on.
        config: the run's config (stored in the checkpoints).
        class_names: the dataset's class names.
        window: the normalisation window.
        extra: the run's ``extra`` record (split, window, resumed_from), stored in the checkpoints.
        dataset_version: the masks' version stamp.
        publish: called with snapshot fields (``epoch``, ``step``, ``eta_s``, ``history``, checkpoints).
        check_stop: raises :class:`~core.train.loop.Stopped` when a stop was asked for.
        started: ``time.time()`` at the run's start (for ``wall_time``).
        clock: times the steps and epoch ends for the ETA it publishes (default: a new
            :class:`~core.train.eta.EtaClock`).
    """

    def __init__(
        self,
        workspace: Workspace,
        run_id: str,
        dataset: str,
        config: TrainConfig,
        class_names: tuple[str, ...],
        window: tuple[float, float],
        extra: dict[str, Any],
        dataset_version: str,
        publish: Callable[..., None],
        check_stop: Callable[[], None],
        started: float,
        clock: EtaClock | None = None,
    ):
        self.workspace, self.run_id, self.dataset, self.config = workspace, run_id, dataset, config
        self.class_names, self.window, self.extra = class_names, window, extra
        self.dataset_version, self.publish, self._check_stop, self.started = (
            dataset_version,
            publish,
            check_stop,
            started,
        )
        run_dir = workspace.run_dir(run_id)
        self.best_path, self.last_path = run_dir / BEST, run_dir / LAST
        self.best = -math.inf
        self.clock = clock or EtaClock()

    def resumed(self, ckpt: Checkpoint, state: FitState) -> None:
        """A resumed run: its source's epochs go into this run's catalog rows, and its ``best.pt``
        is copied as this run's best so far."""
        cat = self.workspace
        for h in state.history:
            cat.add_epoch(self.run_id, int(h["epoch"]), {k: v for k, v in h.items() if k != "epoch"})
        dice = [h.get("val_dice") for h in state.history if finite_or_none(h.get("val_dice")) is not None]
        src_best = Path(ckpt.path).with_name(BEST) if ckpt.path else None
        if dice and src_best is not None and src_best.is_file():
            shutil.copyfile(src_best, self.best_path)
            self.best = max(dice)
            self.publish(best_dice=self.best, best_checkpoint=str(self.best_path))
            cat.update_run(self.run_id, best_checkpoint=str(self.best_path), best_dice=self.best)

    def save(self, state: FitState, path: Path, epoch: int, metrics: dict[str, Any], partial: bool) -> None:
        """Write a checkpoint of ``state`` at ``path`` (atomic)."""
        cfg = self.config
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

    # -- callbacks ---------------------------------------------------------------------------
    def check_stop(self) -> None:
        self._check_stop()

    def on_epoch_start(self, state: FitState, epoch: int) -> None:
        self.clock.epoch_start(time.time())
        self.publish(epoch=epoch - 1, step=0)

    def _eta(self, epoch: int, step: int, epoch_ends: int) -> float | None:
        """Seconds left after ``step`` of ``epoch``, from the clock of recent steps (so that the
        estimate recovers after a slow period)."""
        spe = self.config.steps_per_epoch
        return self.clock.eta((self.config.epochs - epoch) * spe + (spe - step), epoch_ends)

    def on_step(self, state: FitState, epoch: int, step: int) -> None:
        self.clock.step(time.time())
        self.publish(step=step, eta_s=self._eta(epoch, step, self.config.epochs - epoch + 1))

    def on_plan(self, state: FitState, epochs: int) -> None:
        self.config = replace(self.config, epochs=epochs)  # checkpoints store the plan; the ETA follows it
        self.publish(epochs=epochs)

    def on_epoch_end(self, state: FitState, row: dict[str, Any]) -> None:
        cat = self.workspace
        epoch = int(row["epoch"])
        cat.add_epoch(self.run_id, epoch, {k: v for k, v in row.items() if k != "epoch"})
        self.save(state, self.last_path, epoch, row, partial=False)
        updates: dict[str, Any] = {"last_checkpoint": str(self.last_path)}
        if math.isfinite(row["val_dice"]) and row["val_dice"] > self.best:
            self.best = row["val_dice"]
            self.save(state, self.best_path, epoch, row, partial=False)
            updates.update(best_checkpoint=str(self.best_path), best_dice=self.best)
        cat.update_run(self.run_id, wall_time=time.time() - self.started, **updates)
        self.clock.epoch_end(time.time())
        eta = self._eta(epoch, self.config.steps_per_epoch, self.config.epochs - epoch)
        self.publish(epoch=epoch, history=[dict(h) for h in state.history], eta_s=eta, **updates)

    def on_stop(self, state: FitState) -> None:
        # keep the weights reached: last.pt with the last completed epoch's count
        history = state.history
        metrics = dict(history[-1]) if history else {}
        self.save(state, self.last_path, len(history) and int(history[-1]["epoch"]), metrics, partial=True)
        self.publish(last_checkpoint=str(self.last_path))
        self.workspace.update_run(self.run_id, last_checkpoint=str(self.last_path))
