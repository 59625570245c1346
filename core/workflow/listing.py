"""What a workspace holds, as ``python -m core list`` reports it: its datasets with their slice
counts, and every training run with its state and whether it can be resumed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..store.workspace import Workspace
from .runs import CLASS_MEAN_DICE, held_out_scores, held_out_validation, run_view

__all__ = ["workspace_listing", "BEST_DICE_MEASURE"]

#: what the older ``best_dice`` key holds (not the headline: ``score`` is)
BEST_DICE_MEASURE = f"{CLASS_MEAN_DICE} of the best epoch on validation crops"


def workspace_listing(ws: Workspace) -> dict[str, Any]:
    """``{"workspace", "datasets", "runs"}``, JSON-able.

    ``datasets``: ``name, shape, dtype, classes`` and the count of slices of each status (``slices``:
    all). ``runs`` (newest first): ``run_id, dataset, state, best_dice, best_checkpoint,
    last_checkpoint, device, error, epochs_done, epochs, resumed_by`` (the run that continued it, if
    any) and ``resumable`` (not active, and its ``last.pt`` is on disk); and the one score every page
    shows (:mod:`core.workflow.runs`): ``score`` (``None``: not scored), ``score_on`` (``test``,
    ``validation`` or ``""``), ``score_measure`` (``foreground Dice`` or ``class-mean Dice``),
    ``score_text``, ``short_name`` and ``live``; ``held_out``: every measure by name
    (``foreground_dice``, ``class_mean_dice``, ``foreground_iou``, ``class_mean_iou``) on the
    ``test`` and ``validation`` slices the run's end scored whole (:func:`~core.workflow.runs.held_out_scores`).
    ``score`` is the headline; ``best_dice`` is kept as before for scripts that read it: the best
    epoch's class-mean Dice on validation crops (``best_dice_measure`` says so; it flatters a sparse
    foreground), ``None`` for a run that validated on its own training slices.
    """
    datasets = []
    for name in ws.dataset_names():
        info = ws.dataset(name)
        datasets.append(
            {
                "name": name,
                "shape": list(info.shape),
                "dtype": info.dtype,
                "classes": list(info.class_names),
                **info.counts(),
            }
        )
    runs = []
    all_runs = ws.runs()
    resumed_by = {
        r["extra"].get("resumed_from"): r["run_id"] for r in reversed(all_runs) if r["extra"].get("resumed_from")
    }
    for r in all_runs:
        epochs = ws.run_epochs(r["run_id"])
        view = run_view(r, epochs)
        runs.append(
            {
                **{
                    k: r[k]
                    for k in (
                        "run_id",
                        "dataset",
                        "state",
                        "best_dice",
                        "best_checkpoint",
                        "last_checkpoint",
                        "device",
                        "error",
                    )
                },
                "best_dice": r["best_dice"] if held_out_validation(r) else None,
                "best_dice_measure": BEST_DICE_MEASURE,
                "epochs_done": len(epochs),
                "epochs": r["config"].get("epochs"),
                "resumed_by": resumed_by.get(r["run_id"], ""),
                "resumable": r["state"] not in ("queued", "running", "stopping")
                and bool(r["last_checkpoint"] and Path(r["last_checkpoint"]).is_file()),
                "score": view.score,
                "score_on": view.score_on,
                "score_measure": view.measure,
                "score_text": view.score_text,
                "short_name": view.short,
                "live": view.live,
                "held_out": held_out_scores(r),
            }
        )
    return {"workspace": str(ws.root), "datasets": datasets, "runs": runs}
