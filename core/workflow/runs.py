"""How a training run is shown, the same on every page and in ``python -m core list``: its state,
epochs done, one score that means the same everywhere, a short display name, and which run a
picker offers first.

The score (:func:`run_score`) is the held-out **test** score when the run scored test slices, else
its **validation** score (the whole validation slices scored at the run's end, else the best epoch's
validation), and always one measure: **foreground Dice** for two classes (the class-mean with the
background flatters a sparse foreground), **class-mean Dice** for more. A run with no held-out
validation slice (a live-loop round, whose "validation" is its own training slices) or none yet
(stopped before its first validation) is **not scored**.

Live-loop rounds (their runs' origin ``live``; ``<dataset>-live-...`` ids before rounds were
ordinary requests) are listed apart and never offered first: the default model
(:func:`default_run`) is the best-scored finished run of the dataset.

Example:
    >>> v = run_view({"run_id": "d-1", "dataset": "d", "state": "stopped", "created": 0.0}, [])
    >>> v.score_text, v.label.endswith("(d-1)")
    ('not scored', True)
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..store.workspace import Workspace

__all__ = [
    "RunView",
    "FOREGROUND_DICE",
    "CLASS_MEAN_DICE",
    "NOT_SCORED",
    "SCORE_HELP",
    "LIVE_MARK",
    "run_score",
    "run_view",
    "run_views",
    "run_labels",
    "default_run",
    "picker_runs",
    "is_live",
    "held_out_validation",
    "held_out_scores",
    "last_finished",
    "interrupted_runs",
    "short_name",
    "export_warning",
    "checkpoint_warning",
]

FOREGROUND_DICE = "foreground Dice"
CLASS_MEAN_DICE = "class-mean Dice"
NOT_SCORED = "not scored"
SCORE_HELP = (
    "One score per run, the same on every page: on the run's test slices when it kept some (never trained "
    "nor validated on), else on its validation slices. Foreground Dice for two classes (the background "
    "left out: it would flatter a sparse foreground), class-mean Dice for more. A run without a held-out "
    "validation slice, or stopped before its first validation, is not scored."
)
LIVE_MARK = "-live-"  # in the ids of the rounds recorded before rounds had the run origin "live"
ACTIVE = ("queued", "running", "stopping")
FINISHED = ("done",)


def is_live(run: Mapping[str, Any] | str) -> bool:
    """A round of the live loop (*Train on my strokes*): a run (a catalog record) of origin ``live``,
    or one recorded before with ``-live-`` in its id (a run id alone: that older mark only)."""
    if isinstance(run, str):
        return LIVE_MARK in run
    return run.get("origin") == "live" or LIVE_MARK in str(run.get("run_id", ""))


def _finite(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def held_out_validation(run: Mapping[str, Any]) -> bool:
    """Did the run validate on slices it did not train on? (Not a live round, whose validation is its
    own training slices, nor a run with too few labeled slices to hold one out.)"""
    if is_live(run):
        return False
    split = (run.get("extra") or {}).get("split") or {}
    val, train = split.get("val"), split.get("train")
    if val is None:  # an older run without its split recorded: trust its validation
        return True
    return bool(val) and set(val) != set(train or ())


def run_score(run: Mapping[str, Any], epochs: Sequence[Mapping[str, Any]]) -> tuple[float | None, str, str]:
    """``(score, on, measure)`` of a run: ``on`` is ``"test"``, ``"validation"`` or ``""`` (not
    scored); ``measure`` is :data:`FOREGROUND_DICE` (two classes) or :data:`CLASS_MEAN_DICE`.

    Args:
        run: the catalog's run record (``run_id``, ``extra``, ``config``).
        epochs: its epoch rows (:meth:`~core.store.workspace.Workspace.run_epochs`).
    """
    extra = run.get("extra") or {}
    n_classes = len(extra.get("class_names") or ()) or int((run.get("config") or {}).get("n_classes") or 0)
    if not n_classes:  # older records: the epochs say it
        n_classes = 2 if any("val_dice_fg" in e for e in epochs) else 3 if epochs else 2
    binary = n_classes == 2
    measure = FOREGROUND_DICE if binary else CLASS_MEAN_DICE
    if not held_out_validation(run):
        return None, "", measure
    finish = extra.get("finish") or {}
    key = "dice_fg" if binary else "mean_dice"
    for on, part in (("test", "test"), ("validation", "val")):
        value = _finite((finish.get(part) or {}).get(key))
        if value is not None:
            return value, on, measure
    scored = [e for e in epochs if _finite(e.get("val_dice")) is not None]
    if scored:
        best = max(scored, key=lambda e: float(e["val_dice"]))
        value = _finite(best.get("val_dice_fg" if binary else "val_dice"))
        if value is not None:
            return value, "validation", measure
    return None, "", measure


#: JSON key -> (the run end's score key, its name on the pages)
SCORE_KEYS = {
    "foreground_dice": ("dice_fg", FOREGROUND_DICE),
    "class_mean_dice": ("mean_dice", CLASS_MEAN_DICE),
    "foreground_iou": ("iou_fg", "foreground IoU"),
    "class_mean_iou": ("mean_iou", "class-mean IoU"),
}


def held_out_scores(run: Mapping[str, Any]) -> dict[str, dict[str, float | None]]:
    """``{"test": {...}, "validation": {...}}``: each held-out part the run's end scored on whole
    slices, with every measure by name (:data:`SCORE_KEYS`: ``foreground_dice``, ``class_mean_dice``,
    ``foreground_iou``, ``class_mean_iou``; ``None`` where not recorded); parts not scored, and every
    part of a run without a held-out validation slice (a live round), are left out.

    Example:
        >>> held_out_scores({"run_id": "r", "extra": {"finish": {"test": {"dice_fg": 0.876, "mean_dice": 0.93}}}})
        {'test': {'foreground_dice': 0.876, 'class_mean_dice': 0.93, 'foreground_iou': None, 'class_mean_iou': None}}
    """
    if not held_out_validation(run):
        return {}
    finish = (run.get("extra") or {}).get("finish") or {}
    out = {}
    for on, part in (("test", "test"), ("validation", "val")):
        got = finish.get(part) or {}
        scores = {name: _finite(got.get(key)) for name, (key, _) in SCORE_KEYS.items()}
        if any(v is not None for v in scores.values()):
            out[on] = scores
    return out


def short_name(run_id: str, dataset: str = "", live: bool = False) -> str:
    """``isbi2012 · Dec 07 03:15`` for ``isbi2012-20261207-031500-ab12`` (``live`` added for a live
    round: ``live``, or an older round's id); the id itself when it does not read that way."""
    rest = run_id[len(dataset) :].lstrip("-") if dataset and run_id.startswith(dataset) else ""
    marked = rest.startswith(LIVE_MARK.strip("-") + "-")
    if marked:
        rest = rest[len(LIVE_MARK) - 1 :]
    live = live or marked
    parts = rest.split("-")
    if len(parts) >= 2 and len(parts[0]) == 8 and len(parts[1]) == 6 and (parts[0] + parts[1]).isdigit():
        try:
            when = time.strptime(parts[0] + parts[1], "%Y%m%d%H%M%S")
        except ValueError:
            return run_id
        return f"{dataset} {'live ' if live else ''}· {time.strftime('%b %d %H:%M', when)}"
    return run_id


@dataclass(frozen=True)
class RunView:
    """A run as every page shows it.

    Attributes:
        run_id, dataset, state, created: the run (``state`` as the catalog reads it).
        short: a short display name (:func:`short_name`); pages show ``run_id`` too.
        epochs_done, epochs: epochs recorded, epochs planned (``None``: not recorded).
        score, score_on, measure: :func:`run_score`.
        live: a live-loop round.
        checkpoint: ``best.pt`` on disk, else ``last.pt`` on disk, else ``""``.
        best_checkpoint, last_checkpoint: as the catalog records them.
        error: a failed run's message; resumed_from: the run it continued, if any.
        validated: it went through at least one validation (a validation score recorded, held out or not).
    """

    run_id: str
    dataset: str
    state: str
    created: float
    short: str
    epochs_done: int
    epochs: int | None
    score: float | None
    score_on: str
    measure: str
    live: bool
    checkpoint: str
    best_checkpoint: str
    last_checkpoint: str
    error: str
    resumed_from: str = ""
    validated: bool = False

    @property
    def score_text(self) -> str:
        """``test foreground Dice 0.876``, ``validation class-mean Dice 0.812`` or ``not scored``."""
        return NOT_SCORED if self.score is None else f"{self.score_on} {self.measure} {self.score:.3f}"

    @property
    def epochs_count(self) -> str:
        """``3/10`` (done of planned), or ``3`` when the plan was not recorded."""
        return f"{self.epochs_done}/{self.epochs}" if self.epochs else str(self.epochs_done)

    @property
    def epochs_text(self) -> str:
        if self.epochs:
            return f"{self.epochs_done}/{self.epochs} epochs"
        return f"{self.epochs_done} epoch" + ("" if self.epochs_done == 1 else "s")

    @property
    def label(self) -> str:
        """One line for a picker: short name, state, epochs, score, then the full id."""
        return f"{self.short} · {self.state} · {self.epochs_text} · {self.score_text} ({self.run_id})"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "score_text": self.score_text}


def _on_disk(path: str) -> bool:
    return bool(path) and Path(path).is_file()


def run_view(run: Mapping[str, Any], epochs: Sequence[Mapping[str, Any]]) -> RunView:
    """:class:`RunView` of a catalog run record and its epoch rows."""
    score, on, measure = run_score(run, epochs)
    best, last = run.get("best_checkpoint") or "", run.get("last_checkpoint") or ""
    planned = (run.get("config") or {}).get("epochs")
    return RunView(
        run_id=run["run_id"],
        dataset=run.get("dataset", ""),
        state=run.get("state", ""),
        created=float(run.get("created") or 0.0),
        short=short_name(run["run_id"], run.get("dataset", ""), is_live(run)),
        epochs_done=len(epochs),
        epochs=int(planned) if planned else None,
        score=score,
        score_on=on,
        measure=measure,
        live=is_live(run),
        checkpoint=best if _on_disk(best) else last if _on_disk(last) else "",
        best_checkpoint=best,
        last_checkpoint=last,
        error=run.get("error") or "",
        resumed_from=(run.get("extra") or {}).get("resumed_from") or "",
        validated=_finite(run.get("best_dice")) is not None
        or any(_finite(e.get("val_dice")) is not None for e in epochs),
    )


def run_views(ws: Workspace, dataset: str | None = None, with_checkpoint: bool = False) -> list[RunView]:
    """Every run (of ``dataset``), newest first; ``with_checkpoint``: only those with a checkpoint on disk."""
    views = [run_view(r, ws.run_epochs(r["run_id"])) for r in ws.runs(dataset)]
    return [v for v in views if v.checkpoint] if with_checkpoint else views


def run_labels(ws: Workspace, dataset: str | None = None) -> dict[str, str]:
    """Run id -> :attr:`RunView.label`: how a picker of predictions (named by their run) names them."""
    return {v.run_id: v.label for v in run_views(ws, dataset)}


def _rank(v: RunView) -> tuple:
    return (v.score is not None, v.score_on == "test", v.score or 0.0, v.created)


def default_run(views: Sequence[RunView], dataset: str | None = None) -> RunView | None:
    """The run a model picker offers first: the best-scored finished run (of ``dataset`` when given,
    else of any), never a live round; else the best-scored stopped or interrupted one; else ``None``."""
    for pool in (
        [v for v in views if not v.live and v.state in FINISHED],
        [v for v in views if not v.live and v.state not in ACTIVE and v.score is not None],
    ):
        mine = [v for v in pool if dataset is None or v.dataset == dataset]
        if mine:
            return max(mine, key=_rank)
    return None


def picker_runs(views: Sequence[RunView], dataset: str | None = None) -> tuple[list[RunView], int]:
    """``(runs in picker order, index of the default)``: the runs of ``dataset`` first, then other
    datasets' runs, then every live round, each group newest first; the default is
    :func:`default_run` (of ``dataset``, else of any), else the first run that is not live."""
    regular = [v for v in views if not v.live]
    ordered = [v for v in regular if v.dataset == dataset] + [v for v in regular if v.dataset != dataset]
    ordered += [v for v in views if v.live]
    best = default_run(ordered, dataset) or default_run(ordered)
    if best is not None:
        return ordered, ordered.index(best)
    return ordered, next((i for i, v in enumerate(ordered) if not v.live), 0)


def last_finished(views: Sequence[RunView]) -> RunView | None:
    """The newest run that ended by itself (``done``), live rounds aside."""
    return next((v for v in views if v.state in FINISHED and not v.live), None)


def interrupted_runs(views: Sequence[RunView]) -> list[RunView]:
    """Runs whose process ended before they did (newest first), not resumed since."""
    resumed = {v.resumed_from for v in views if v.resumed_from}
    return [v for v in views if v.state == "interrupted" and v.run_id not in resumed]


def export_warning(view: RunView) -> str:
    """Why exporting ``view``'s weights as a model would mislead (``""``: nothing to say)."""
    if not view.validated:
        return (
            f"Run {view.run_id} was {view.state} before its first validation: its weights were never scored "
            "and may be barely trained."
        )
    if view.live:
        return (
            f"Run {view.run_id} is a live-loop round: trained for seconds on strokes, never scored on held-out slices."
        )
    return ""


def checkpoint_warning(ws: Workspace, checkpoint: str | Path) -> str:
    """:func:`export_warning` of the run of the workspace whose best or last checkpoint is
    ``checkpoint`` (``""`` when it is no run's, or nothing is to be said): ``python -m core
    export-model`` prints it as a warning."""
    try:
        target = Path(checkpoint).resolve()
    except OSError:
        return ""
    for run in ws.runs():
        paths = [run.get(k) for k in ("best_checkpoint", "last_checkpoint") if run.get(k)]
        if any(Path(p).resolve() == target for p in paths):
            return export_warning(run_view(run, ws.run_epochs(run["run_id"])))
    return ""
