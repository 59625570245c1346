"""``python -m core repair`` and the Home page's Repair: the catalog rebuilt from the workspace's folders.

The catalog (``catalog.sqlite``) indexes what the folders hold; when it is lost (deleted, emptied,
its WAL deleted) or damaged, :func:`repair_workspace` puts back what the folders tell: datasets
(:mod:`core.store.recovery`: images, ``dataset.json``, every mask version and its provenance) and
training runs (``runs/<id>/``: the checkpoints hold the config, the epochs and their scores; a
run's ``bundle.zip`` its outcome). It only adds rows: a damaged file is moved aside first
(``catalog.sqlite.corrupt-<time>``), never deleted, and no dataset or run file is changed.
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path
from typing import Any

from ..store.backups import list_backups
from ..store.layout import BEST, BUNDLE, LAST, runs_dir
from ..store.recovery import restore_backup, set_aside_damaged
from ..store.workspace import Workspace, default_root

__all__ = ["repair_workspace", "repair_needed"]


def repair_needed(ws: Workspace) -> str:
    """What the catalog lost, in words for a banner; ``""`` when it lists everything the folders hold."""
    found = ws.unlisted()
    return found.message() if found else ""


def repair_workspace(root: str | Path | None = None, *, from_backup: str | Path | None = None) -> dict[str, Any]:
    """Rebuild the catalog of the workspace at ``root`` (default: :func:`~core.store.workspace.default_root`)
    from its folders; with ``from_backup``, start from that catalog copy (the current catalog is moved
    aside) and add what the folders hold beyond it.

    Returns the report: ``catalog`` (what was done with the file), ``datasets`` and ``runs``
    recovered, ``mask_versions`` (their number), ``not_recovered`` (``path`` and ``why``), ``backups``
    (the paths of the catalog copies there are, newest first).
    """
    root = Path(root).resolve() if root is not None else default_root()
    report: dict[str, Any] = {"workspace": str(root), "catalog": "kept: it reads well"}
    if from_backup is not None:
        replaced = restore_backup(root, from_backup)
        report["catalog"] = f"restored from {Path(from_backup).name}" + (
            f"; the catalog it replaced is kept as {replaced.name}" if replaced else ""
        )
    else:
        damaged = set_aside_damaged(root)
        if damaged is not None:
            report["catalog"] = f"damaged ({damaged[1]}): moved aside to {damaged[0].name}, rebuilt from the folders"
    ws = Workspace(root)
    if from_backup is None and "kept" in report["catalog"]:
        ws.backup_now()  # what it was before repair added to it
    runs, failed = _recover_runs(ws)
    datasets, failed_data = ws.recover_datasets()
    report.update(
        datasets=[d["dataset"] for d in datasets if "slices" in d],
        mask_versions=sum(d["mask_versions"] for d in datasets),
        runs=runs,
        details=datasets,
        not_recovered=failed + failed_data,
        backups=[str(p) for p in list_backups(root)],
    )
    return report


def _recover_runs(ws: Workspace) -> tuple[list[str], list[dict[str, str]]]:
    """Runs whose folder the catalog does not list, from their checkpoints (torch is imported only
    when there is one)."""
    folder = runs_dir(ws.root)
    if not folder.is_dir():
        return [], []
    known = {r["run_id"] for r in ws.runs()}
    done, failed = [], []
    for entry in sorted(folder.iterdir()):
        if not entry.is_dir() or entry.name.startswith(".") or entry.name in known:
            continue
        try:
            run, epochs = _run_from_folder(entry)
        except ValueError as exc:  # SegDashError: an unreadable or foreign checkpoint
            failed.append({"path": f"runs/{entry.name}", "why": str(exc)})
            continue
        if run is None:
            failed.append({"path": f"runs/{entry.name}", "why": "no checkpoint (best.pt, last.pt) to read it from"})
        elif ws.recover_run(run, epochs):
            done.append(entry.name)
    return done, failed


def _run_from_folder(folder: Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    ckpts = [folder / n for n in (LAST, BEST) if (folder / n).is_file()]
    if not ckpts:
        return None, []
    from ..nn.checkpoint import read_checkpoint_info

    info = read_checkpoint_info(ckpts[0])  # last.pt: the whole history
    best = read_checkpoint_info(folder / BEST) if (folder / BEST).is_file() else None
    bundle = _bundle_config(folder / BUNDLE)
    extra = dict(info["extra"])
    config = extra.pop("train_config", None) or bundle.get("train_config") or {}
    dataset = str(extra.pop("dataset", "") or bundle.get("dataset") or "")
    dataset_version = str(extra.pop("dataset_version", "") or "")
    extra.pop("partial_epoch", None)
    extra.setdefault("class_names", list(info["class_names"]))
    if bundle.get("finish"):
        extra.setdefault("finish", bundle["finish"])
    history = [h for h in info["history"] if isinstance(h, dict) and "epoch" in h]
    dices = [float(h["val_dice"]) for h in history if _finite(h.get("val_dice"))]
    best_dice = bundle.get("best_dice")
    if not _finite(best_dice):
        best_dice = float(best["metrics"]["val_dice"]) if best and _finite(best["metrics"].get("val_dice")) else None
        best_dice = best_dice if best_dice is not None else (max(dices) if dices else None)
    planned = config.get("epochs")
    state = bundle.get("state") or ("done" if planned and info["epoch"] >= int(planned) else "stopped")
    created = bundle.get("created") or min(p.stat().st_mtime for p in ckpts)
    run = {
        "run_id": folder.name,
        "dataset": dataset,
        "created": float(created),
        "state": "stopped" if state in ("queued", "running", "stopping", "interrupted") else state,
        "config": config,
        "device": str(bundle.get("device") or ""),
        "dataset_version": dataset_version,
        "best_checkpoint": str(folder / BEST) if (folder / BEST).is_file() else "",
        "last_checkpoint": str(folder / LAST) if (folder / LAST).is_file() else "",
        "best_dice": best_dice,
        "wall_time": float(bundle.get("wall_time_s") or 0.0),
        "extra": extra,
    }
    return run, history


def _bundle_config(path: Path) -> dict[str, Any]:
    """``config.json`` of a run's ``bundle.zip`` (its outcome), or ``{}``."""
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo("config.json")
            if info.file_size > 16 << 20:
                return {}
            out = json.loads(zf.read(info))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return {}
    return out if isinstance(out, dict) else {}


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
