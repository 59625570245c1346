"""The cheap half of checking a training request, without torch: the dataset exists, its images can
be opened and it has labeled slices, and the resume source (a run id or a checkpoint file) is
resolved and not active (:func:`check_source`). :func:`~core.train.request.check_request` calls it
first; ``python -m core train`` calls it before torch is imported, so these refusals answer at once.

Example:
    >>> check_source(ws, "cells", resume="no-such-run")                  # doctest: +SKIP
    Traceback (most recent call last):
    SegDashError: cannot resume from 'no-such-run': neither a run id of this workspace ...
"""

from __future__ import annotations

from pathlib import Path

from ..errors import SegDashError
from ..store.records import DatasetInfo
from ..store.schema import ACTIVE_RUN_STATES
from ..store.workspace import Workspace

__all__ = ["check_source", "resume_source"]


def check_source(
    ws: Workspace, dataset: str, resume: str | Path | None = None
) -> tuple[DatasetInfo, tuple[Path, str] | None]:
    """The dataset's info and ``(checkpoint path, source run id or "")`` of ``resume`` (``None``
    without one); refuses an unknown dataset, images that cannot be opened, no labeled slices, and
    a resume source that is unknown, active or has no checkpoint."""
    info = ws.dataset(dataset)
    ws.read_images(dataset)  # opened, not read: a volume imported by reference that moved is refused here
    if not ws.labeled_slices(dataset):
        raise SegDashError(f"dataset {dataset!r} has no labeled slices; label at least one slice first")
    return info, (resume_source(ws, resume) if resume is not None else None)


def resume_source(ws: Workspace, resume: str | Path) -> tuple[Path, str]:
    """``(checkpoint path, source run id or "")`` for a run id or a checkpoint path (no torch)."""
    text = str(resume)
    run = ws.run(text) if "/" not in text and "\\" not in text else None
    if run is not None:
        if run["state"] in ACTIVE_RUN_STATES:
            raise SegDashError(
                f"run {text!r} is still {run['state']} (process {run['owner_pid']} on "
                f"{run['owner_host']}); stop it first, or resume it once it has stopped"
            )
        for key in ("last_checkpoint", "best_checkpoint"):
            if run.get(key) and Path(run[key]).is_file():
                return Path(run[key]), text
        if run["state"] == "interrupted":
            raise SegDashError(
                f"run {text!r} was interrupted before its first epoch ended: it has no checkpoint "
                "to resume from; start a new training"
            )
        raise SegDashError(f"run {text!r} has no checkpoint to resume from")
    path = Path(text)
    if path.is_file():
        return path, ""
    if "/" in text or "\\" in text:
        raise SegDashError(f"cannot resume from {text!r}: no such checkpoint file")
    known = ", ".join(r["run_id"] for r in ws.runs()[:5]) or "none"
    raise SegDashError(
        f"cannot resume from {text!r}: neither a run id of this workspace (latest runs: {known}) nor a checkpoint file"
    )
