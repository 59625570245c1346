"""One training request: :class:`TrainingRequest`, what a run is asked to do (dataset, config,
resume source, split, deadline), typed and JSON-serialisable, and :func:`check_request`, the one
place it is checked. The Train page (:func:`~core.train.process.start_training`), ``python -m core
train`` and torchrun (:func:`~core.train.headless.train_headless`, :func:`~core.train.launch.start_job`)
and "Train on my strokes" (through :class:`~core.train.job.TrainingJob`) all build it here; the
worker process receives it as one JSON line (:mod:`core.train.process`), torchrun's rank 0 sends it
to the other ranks, and :func:`~core.train.prepare.prepare_run` turns it into the run's data.

Checked once (:func:`check_request`): the dataset exists, its images can be opened, and it has
labeled slices; the resume source
(a run id or a checkpoint file) is resolved, not active, has a checkpoint with the dataset's classes
and has not reached ``epochs``; its network (model config, 2.5D context) wins over the given one;
``n_classes`` is the dataset's, set in the config (``config.model.n_classes``, nowhere beside it);
the config's own limits (:class:`~core.train.config.TrainConfig`); the run id is new; the deadline
is a time. The cheap refusals (dataset, labels, resume source) come before any checkpoint is read.

Example:
    >>> req = check_request(ws, "cells", {"epochs": 3})                     # doctest: +SKIP
    >>> TrainingRequest.from_json(req.to_json()) == req                      # doctest: +SKIP
    True
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import SegDashError
from ..nn.checkpoint import read_checkpoint_info
from ..store.workspace import Workspace, validate_name
from .config import TrainConfig, default_config
from .source import check_source

__all__ = ["TrainingRequest", "check_request"]


@dataclass(frozen=True)
class TrainingRequest:
    """A checked training request (build it with :func:`check_request`).

    Attributes:
        workspace: the workspace's folder.
        dataset: the dataset whose labeled slices train.
        config: the run's config, ``model.n_classes`` the dataset's (a resumed run: its checkpoint's
            network); the split's settings are its ``val_split``, ``val_fraction``, ``val_gap``,
            ``val_slices`` and ``test_slices`` (:attr:`splits`).
        run_id: the new run's id.
        origin: where it was started from (:data:`~core.store.schema.RUN_ORIGINS`).
        resume: what it resumes, as given (a run id or a checkpoint path), else ``None``;
            ``resume_path`` the checkpoint, ``resumed_from`` the source run (or the path), and
            ``start_epoch`` the checkpoint's epoch.
        deadline: ``time.time()`` at which the run stops (keeping ``last.pt``), else ``None``.
    """

    workspace: str
    dataset: str
    config: TrainConfig
    run_id: str
    origin: str = "python"
    resume: str | None = None
    resume_path: str = ""
    resumed_from: str = ""
    start_epoch: int = 0
    deadline: float | None = None

    @property
    def splits(self) -> dict[str, Any]:
        """The split's settings, as the config holds them."""
        c = self.config
        return {
            "mode": c.val_split,
            "val_fraction": c.val_fraction,
            "gap": c.val_gap,
            "val_slices": list(c.val_slices),
            "test_slices": list(c.test_slices),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "workspace": self.workspace,
            "dataset": self.dataset,
            "config": self.config.to_dict(),
            "run_id": self.run_id,
            "origin": self.origin,
            "resume": self.resume,
            "resume_path": self.resume_path,
            "resumed_from": self.resumed_from,
            "start_epoch": self.start_epoch,
            "deadline": self.deadline,
        }

    def to_json(self) -> str:
        """One line of JSON; :meth:`from_json` gives the same request."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainingRequest:
        """The request :meth:`to_dict` gave (already checked: not checked again)."""
        return cls(**{**d, "config": TrainConfig.from_dict(d["config"])})

    @classmethod
    def from_json(cls, text: str | bytes) -> TrainingRequest:
        """The request :meth:`to_json` wrote (already checked: not checked again)."""
        return cls.from_dict(json.loads(text))


def _new_run_id(dataset: str) -> str:
    return validate_name(f"{dataset[:40]}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}")


def check_request(
    workspace: Workspace | str | Path,
    dataset: str,
    config: TrainConfig | dict[str, Any] | None = None,
    *,
    epochs: int | None = None,
    resume: str | Path | None = None,
    run_id: str | None = None,
    origin: str = "python",
    deadline: float | None = None,
) -> TrainingRequest:
    """Check a training request (see the module docstring) and return it.

    Args:
        workspace: workspace or its folder.
        dataset: dataset name.
        config: a :class:`~core.train.config.TrainConfig` (taken as it is), or a partial dict of
            overrides on the recipe (:func:`~core.train.config.default_config`), or, when resuming,
            on the resumed run's config; ``None``: no overrides.
        epochs: final epoch number (overrides the config).
        resume: run id or checkpoint path to continue from.
        run_id: the new run's id (default ``<dataset>-<date>-<time>-<random>``).
        origin: recorded with the run: ``app``, ``cli``, ``python``, ``torchrun``.
        deadline: ``time.time()`` at which the run stops.

    Raises:
        SegDashError: unknown dataset, no labeled slices, nothing (or an active run) to resume, an
            unusable checkpoint or one that reached ``epochs``, a bad config, a run id in use.
    """
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    info, source = check_source(ws, dataset, resume)
    if deadline is not None and not (isinstance(deadline, (int, float)) and deadline > 0):
        raise SegDashError(f"the deadline must be a time (seconds since the epoch), got {deadline!r}")
    name = validate_name(run_id) if run_id else _new_run_id(dataset)
    if ws.run(name) is not None:
        raise SegDashError(f"a run named {name!r} exists already")
    meta = read_checkpoint_info(source[0]) if source is not None else None
    if isinstance(config, TrainConfig):
        cfg = config
    else:
        stored = meta["extra"].get("train_config") if meta is not None else None
        base = TrainConfig.from_dict(stored) if stored else default_config(info.n_classes)
        cfg = TrainConfig.from_dict(config or {}, base=base)
    if epochs is not None:
        cfg = replace(cfg, epochs=epochs)
    start_epoch, resumed_from = 0, ""
    if source is not None and meta is not None:
        path = source[0]
        if len(meta["class_names"]) != info.n_classes:
            raise SegDashError(
                f"checkpoint {path} has {len(meta['class_names'])} classes, dataset {dataset!r} has {info.n_classes}"
            )
        start_epoch = int(meta["epoch"])
        if start_epoch >= cfg.epochs and not cfg.minutes:  # a time budget plans its own epochs
            raise SegDashError(
                f"the checkpoint has reached epoch {start_epoch} of {cfg.epochs}; "
                f"set epochs above {start_epoch} to train longer"
            )
        resumed_from = source[1] or str(meta["run_id"] or path)
        cfg = replace(cfg, model=meta["model_config"], context=int(meta.get("context") or 0))
    cfg = replace(cfg, model=replace(cfg.model, n_classes=info.n_classes))
    return TrainingRequest(
        workspace=str(ws.root),
        dataset=dataset,
        config=cfg,
        run_id=name,
        origin=origin,
        resume=None if resume is None else str(resume),
        resume_path="" if source is None else str(source[0]),
        resumed_from=resumed_from,
        start_epoch=start_epoch,
        deadline=None if deadline is None else float(deadline),
    )
