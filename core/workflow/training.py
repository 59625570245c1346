"""What the Train page says about runs, decided here rather than in the page: a running job's
progress line, the runs table (every cell a value or words, never a bare ``None``), and which run
Resume offers first.

Example:
    >>> time_left(185.0), time_left(None)
    ('about 3 min 05 s left', 'estimating the time left')
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..store.workspace import Workspace
from ..train.config import model_label
from ..train.headless import job_progress
from ..train.snapshot import held_out_ious, origin_label
from .runs import ACTIVE, RunView, interrupted_runs, is_live, run_view

__all__ = ["time_left", "progress", "runs_table", "resume_choices", "NOT_RECORDED"]

NOT_RECORDED = "—"  # a cell with nothing to show: a dash, not None


def time_left(seconds: float | None) -> str:
    """``about 3 min 05 s left``, or what to say before the job has timed recent steps."""
    if seconds is None:
        return "estimating the time left"
    s = int(round(seconds))
    return (
        "about "
        + (f"{s // 3600} h {s % 3600 // 60:02d} min" if s >= 3600 else f"{s // 60} min {s % 60:02d} s")
        + " left"
    )


def progress(snap: Mapping[str, Any]) -> tuple[float, str]:
    """``(fraction done, line under the bar)`` of a job snapshot."""
    spe, epochs = max(1, int(snap["steps_per_epoch"])), int(snap["epochs"])
    done, total = job_progress(snap)
    current = min(int(snap["epoch"]) + 1, epochs)
    if snap["state"] == "stopping":
        text = (
            f"Stopping ... (epoch {current}/{epochs}, step {snap['step']}/{spe}): finishing the current step, "
            "saving last.pt and ending the training process"
        )
    elif snap["state"] in ACTIVE:
        text = f"Epoch {current}/{epochs} · step {snap['step']}/{spe} · {time_left(snap['eta_s'])}"
    else:
        text = f"{snap['state']} after {snap['epoch']} of {epochs} epochs"
    return done / total, text


def _num(v: float | None) -> str:
    return NOT_RECORDED if v is None else f"{v:.4f}"


def runs_table(ws: Workspace, dataset: str) -> list[dict[str, str]]:
    """The runs of ``dataset``, newest first and live-loop rounds last, as the Train page's table:
    short and full name, state, epochs, the one score (:mod:`core.workflow.runs`), held-out IoUs,
    model, device, who trained it, date and error; every cell text (``—`` where nothing was recorded)."""
    rows = []
    for r in sorted(ws.runs(dataset), key=is_live):
        v = run_view(r, ws.run_epochs(r.run_id))
        ious = held_out_ious(r)
        rows.append(
            {
                "run": v.short,
                "state": v.state,
                "epochs": v.epochs_count,
                "score": v.score_text,
                "validation IoU": _num(ious["val"]),
                "test IoU": _num(ious["test"]),
                "model": model_label(r.config),
                "device": r.device or NOT_RECORDED,
                "trained by": origin_label(r) or NOT_RECORDED,
                "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created)),
                "run id": r.run_id,
                "error": r.error or "",
            }
        )
    if not any(row["error"] for row in rows):
        for row in rows:
            del row["error"]
    return rows


def resume_choices(views: Sequence[RunView]) -> tuple[list[str], int]:
    """``(run ids Resume can continue, index of the one offered first)``: runs not active with a
    ``last.pt`` on disk, newest first; the newest interrupted one not resumed yet is offered first."""
    ids = [v.run_id for v in views if v.state not in ACTIVE and v.last_checkpoint and Path(v.last_checkpoint).is_file()]
    gone = {v.run_id for v in interrupted_runs(views)}
    return ids, next((i for i, rid in enumerate(ids) if rid in gone), 0)
