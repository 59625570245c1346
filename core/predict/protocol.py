"""What a dataset prediction's worker process (:mod:`core.predict.worker`) and the job that starts it
(:class:`~core.predict.dataset.PredictionJob`) exchange: the spec the worker reads on standard input
(:func:`spec_of`) and the result it writes back (:func:`result_of`). Apart from both, so neither imports
the other."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from .config import PredictConfig, PredictionResult

__all__ = ["spec_of", "result_of"]


def spec_of(
    ws_root: str | Path, dataset: str, checkpoint: str | Path, cfg: PredictConfig, run_id: str | None, cancelled: bool
) -> str:
    """The JSON a worker reads to predict ``dataset`` of the workspace at ``ws_root``; ``cancelled``:
    cancelled before it started; ``parent``: this process, the server it stops with."""
    spec = {"workspace": str(ws_root), "dataset": dataset, "checkpoint": str(checkpoint), "run_id": run_id}
    return json.dumps({**spec, "cfg": asdict(cfg), "cancelled": cancelled, "parent": os.getpid()})


def result_of(payload: dict[str, Any]) -> PredictionResult:
    """A :class:`PredictionResult` from a worker's ``result`` line."""
    known = {f.name for f in fields(PredictionResult)}
    d = {k: v for k, v in payload.items() if k in known}
    for key in ("masks_path", "prob_path"):
        d[key] = None if d.get(key) is None else Path(d[key])
    d["warnings"] = tuple(d.get("warnings") or ())
    return PredictionResult(**d)
