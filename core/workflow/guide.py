"""What to do next: the Home page's suggestions, from what the workspace holds for a dataset.

The workflow is import -> label -> train -> predict -> correct -> export; :func:`next_steps` looks
at the dataset's slice statuses, its training runs and its stored predictions and says which page
moves the user on, and why. Checking for predictions does not import torch
(:mod:`core.predict.stored` is numpy only).

Example:
    >>> import numpy as np, tempfile
    >>> from core.store.workspace import Workspace
    >>> ws = Workspace(tempfile.mkdtemp())
    >>> [s.page for s in next_steps(ws, None)]
    ['pages/data.py']
    >>> _ = ws.create_dataset("demo", np.zeros((2, 8, 8), np.uint8), None, ["bg", "cell"])
    >>> next_steps(ws, "demo")[0].page
    'pages/label.py'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..predict.stored import list_predictions
from ..store.layout import predictions_dir
from ..store.workspace import Workspace

__all__ = ["Step", "next_steps", "last_run", "prediction_ids"]

_ACTIVE = ("queued", "running", "stopping")  # as core.train.job._ACTIVE_STATES


@dataclass(frozen=True)
class Step:
    """A suggestion: go to ``page`` (a path under ``pages/``) to do ``label``, because ``why``."""

    page: str
    label: str
    why: str
    icon: str = ""


def prediction_ids(ws: Workspace, dataset: str) -> list[str]:
    """Ids of the complete stored predictions of ``dataset``, newest first (``[]`` if none)."""
    if not predictions_dir(ws.root, dataset).is_dir():
        return []
    return list_predictions(ws, dataset)


def last_run(ws: Workspace, dataset: str) -> dict[str, Any] | None:
    """The newest training run of ``dataset`` (a catalog row), or ``None``."""
    runs = ws.runs(dataset)
    return runs[0] if runs else None


def next_steps(ws: Workspace, dataset: str | None) -> list[Step]:
    """Suggestions in order of what moves the user on most, the first the most useful."""
    if not dataset or not ws.has_dataset(dataset):
        return [Step("pages/data.py", "Import a dataset", "there is no dataset yet", ":material/upload:")]
    counts = ws.dataset(dataset).counts()
    masked = counts["slices"] - counts["unlabeled"]
    if masked == 0:
        return [
            Step(
                "pages/label.py",
                "Label a few slices",
                "no slice has a mask yet; a handful of labeled slices is enough to train a first model",
                ":material/brush:",
            ),
            Step(
                "pages/data.py",
                "Or import masks you already have",
                "masks are imported with their images",
                ":material/upload:",
            ),
        ]
    steps: list[Step] = []
    runs = ws.runs(dataset)
    done = [r for r in runs if r["state"] in ("done", "stopped") and r.get("best_checkpoint")]
    active = [r for r in runs if r["state"] in _ACTIVE]
    if runs and runs[0]["state"] == "interrupted" and runs[0].get("last_checkpoint"):
        steps.append(
            Step(
                "pages/train.py",
                "Resume the interrupted training",
                f"run {runs[0]['run_id']} stopped when its process ended (a restart or a crash); "
                "resume it from its last checkpoint",
                ":material/resume:",
            )
        )
    if active:
        steps.append(
            Step(
                "pages/train.py",
                "Watch the training",
                f"run {active[0]['run_id']} is {active[0]['state']}",
                ":material/model_training:",
            )
        )
    elif not done and not steps:
        steps.append(
            Step(
                "pages/train.py",
                "Train a first model",
                f"{masked} slice{'s' if masked != 1 else ''} have masks and no model is trained yet",
                ":material/model_training:",
            )
        )
    if done:
        preds = prediction_ids(ws, dataset)
        if not preds:
            steps.append(
                Step(
                    "pages/predictions.py",
                    "Predict the dataset",
                    f"run {done[0]['run_id']} is trained; predict to see where it fails",
                    ":material/insights:",
                )
            )
        else:
            steps.append(
                Step(
                    "pages/predictions.py",
                    "Review the predictions",
                    "the correction queue lists the slices worth fixing first",
                    ":material/insights:",
                )
            )
        if counts["unlabeled"]:
            steps.append(
                Step(
                    "pages/label.py",
                    "Label unlabeled slices from the model's prediction",
                    f"{counts['unlabeled']} slices are unlabeled; start them from the prediction and correct",
                    ":material/brush:",
                )
            )
    elif counts["unlabeled"] and not active:
        steps.append(
            Step(
                "pages/label.py",
                "Label more slices",
                f"{counts['unlabeled']} slices are still unlabeled",
                ":material/brush:",
            )
        )
    steps.append(Step("pages/export.py", "Export the masks", f"{masked} slices have masks", ":material/download:"))
    return steps
