"""The live label-train-correct loop: "Train on my strokes" on the Label page.

A round is an ordinary training request with a deadline: :func:`start_round` checks it
(:func:`~core.train.request.check_request`, origin ``live``, the run id of every run) and hands it to
:func:`~core.train.process.start_training`, the Train page's own path, so a worker process trains it
(a spare one the Label page started ahead when it opened, :func:`warm_up`) and its run is recorded
like any other. The job stops itself at the deadline, once it has taken its first steps
(:data:`~core.train.job.DEADLINE_MIN_STEPS`), keeping the weights reached in ``last.pt``. The
:class:`LiveRound` it returns holds no thread: whoever shows it polls it (:meth:`LiveRound.poll`, the
page's fragment every second; :meth:`LiveRound.join` in scripts), reading the job's progress as the
Train page does (from the catalog, for a worker process), and the poll that finds the run ended
predicts the slice with its ``last.pt``.

A round's prediction is judged on the strokes of the slice it predicts (:func:`judge`): its
foreground Dice there beside that of a fixed threshold of the raw slice (Otsu's, the foreground on
the side the strokes say); a round that does no better is said to be not yet usable
(:func:`round_message`). The strokes were trained on, so this flatters the network: a round that
loses to a plain threshold even there is surely not usable (``benchmarks/bench_live.py`` compares
both on never-labeled slices against their truth).

Each round continues from the newest live round of the dataset; the first from the dataset's current
model (the newest finished run with a checkpoint) when there is one, else from a small fresh
network (:func:`live_config`). The time budget counts from the press of the button: the worker's
start-up, the steps and the stop; the prediction of the slice comes after (a second or two).

Example:
    >>> r = start_round(ws, "cells", z=3)                          # doctest: +SKIP
    >>> r.join(); r.snapshot()["state"], r.prediction.shape          # doctest: +SKIP
    ('done', (512, 512))
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SegDashError
from ..nn.device import use_worker_process
from ..store.schema import ACTIVE_RUN_STATES
from ..store.workspace import Workspace
from ..train import spare
from ..train.config import TrainConfig, default_config
from ..train.job import DEADLINE_MIN_STEPS, steps_taken
from ..train.process import start_training
from ..train.registry import registry
from ..train.snapshot import JobHandle, TrainingSnapshot
from .assist import model_sources
from .live_judge import foreground_above, judge, threshold_baseline
from .runs import is_live

__all__ = [
    "LiveRound",
    "live_config",
    "start_round",
    "warm_up",
    "budgets",
    "judge",
    "foreground_above",
    "threshold_baseline",
    "round_message",
    "FIRST_BUDGET_S",
    "LATER_BUDGET_S",
    "MIN_STEPS",
]

FIRST_BUDGET_S = 40.0  # a fresh network: the first prediction should show within a minute of the press
LATER_BUDGET_S = 20.0  # a warm one: each later round within half a minute
MIN_STEPS = DEADLINE_MIN_STEPS  # a round stops at its deadline only once it has taken this many steps
_FINISHING_S = 30.0  # how long a new round waits for the previous round's worker to end
_WARMING: list[threading.Thread] = []  # the server's one import thread (warm_up)
_LOCK = threading.Lock()


def warm_up() -> threading.Thread:
    """Prepare the next round while the user draws (the Label page calls it as it renders): a spare
    worker process that imports what training needs and waits for the request
    (:func:`~core.train.spare.prestart`; again once a round has taken it), and, once per process in
    a background thread, the tiled inference (MONAI) this process predicts the slice with. Returns
    that thread."""
    if use_worker_process():
        spare.prestart()
    with _LOCK:
        if not _WARMING:
            _WARMING.append(threading.Thread(target=_import_for_prediction, name="segdash-live-warm-up", daemon=True))
            _WARMING[0].start()
        return _WARMING[0]


def _import_for_prediction() -> None:
    try:
        if not use_worker_process():  # a round in a thread of this process builds its loss here
            import segmentation_models_pytorch.losses  # noqa: F401

        from ..predict import inferer  # noqa: F401 - MONAI's sliding window, for the round's prediction
    except Exception:  # noqa: BLE001 - the round imports them again and reports what fails
        pass


def live_config(n_classes: int) -> TrainConfig:
    """The short-round recipe: the default U-Net at half width on 128-px patches, constant learning
    rate (the round is cut by time, not by a schedule), every labeled slice trained on (no slice held
    out; the quick validation after each short epoch scores a 128-px crop of the training slices)."""
    base = default_config(n_classes)
    return replace(
        base,
        model=replace(base.model, classic_width=8),
        patch_size=128,
        batch_size=8,
        lr=2e-3,
        scheduler="none",
        epochs=10_000,
        steps_per_epoch=25,  # short epochs: patches are drawn per epoch, and each end saves the weights
        val_fraction=0.0,
        val_crop=128,
    )


def _live_runs(ws: Workspace, dataset: str) -> list[Any]:
    """Live rounds of ``dataset`` with a checkpoint on disk, ended, newest first."""
    runs = ws.runs_with_checkpoints(dataset, keys=("last_checkpoint", "best_checkpoint"))
    return [r for r in runs if is_live(r) and r["state"] not in ACTIVE_RUN_STATES]


@dataclass
class LiveRound:
    """One round: its job trains until ``budget_s`` after the press (``started``); the poll that
    finds the job ended predicts slice ``z``.

    Attributes:
        state: ``training``, ``predicting``, ``done`` or ``failed`` (``error`` says why).
        source: what it continued from, in words; ``run_id`` its training run; ``job`` the job that
            trains it (:func:`~core.train.process.start_training`'s).
        prediction: (Y, X) uint8 class indices of slice ``z`` once ``done``.
        steps: optimisation steps taken; ``trained_s``, ``total_s``: seconds to the stop and to the prediction.
        first_step_s: seconds from the press to the end of the first step (``None`` before it);
            ``phases``: when the job was seen ``running`` and past its ``split`` (and window), to
            within a poll, and its first ``step`` (as the job recorded it).
        judgement: :func:`judge` of the prediction (``None``: not judged).
    """

    ws: Workspace
    dataset: str
    z: int
    budget_s: float
    source: str = "a fresh network"
    run_id: str = ""
    state: str = "training"
    error: str = ""
    prediction: np.ndarray | None = None
    steps: int = 0
    started: float = field(default_factory=time.time)
    trained_s: float = 0.0
    total_s: float = 0.0
    first_step_s: float | None = None
    phases: dict[str, float] = field(default_factory=dict)
    judgement: dict[str, Any] | None = None
    job: JobHandle | None = None

    def poll(self) -> LiveRound:
        """Read the job's progress; once it has ended, predict the slice (here, in the caller's
        thread: a second or two) and judge it. Returns the round."""
        if self.state != "training" or self.job is None:
            return self
        snap = self.job.snapshot()
        self._seen(snap)
        if snap.state in ACTIVE_RUN_STATES:
            return self
        self.trained_s = time.time() - self.started
        try:
            _not_scored(self.ws, self.run_id)
            ckpt = snap.last_checkpoint or snap.best_checkpoint
            if snap.state == "failed" or not ckpt:
                raise SegDashError(snap.error or "the round stopped before the network could be saved")
            self.state = "predicting"
            self.prediction = _predict(self.ws, self.dataset, self.z, Path(ckpt))
            self.judgement = _judge_round(self.ws, self.dataset, self.z, self.prediction)
            self.state = "done"
        except Exception as exc:  # noqa: BLE001 - the page shows it
            self.error, self.state = str(exc), "failed"
        self.total_s = time.time() - self.started
        return self

    def _seen(self, snap: TrainingSnapshot) -> None:
        now = time.time() - self.started
        self.steps = max(self.steps, steps_taken(snap))
        for phase, reached in (("running", snap.state != "queued"), ("split", bool(snap.device))):
            if reached and phase not in self.phases:
                self.phases[phase] = round(now, 1)
        if snap.first_step_at is not None and self.first_step_s is None:
            self.first_step_s = max(0.0, float(snap.first_step_at) - self.started)
            self.phases["step"] = round(self.first_step_s, 1)

    def join(self, timeout: float | None = None, every: float = 0.2) -> bool:
        """Poll the round every ``every`` seconds until it has ended (done or failed) or ``timeout``
        seconds have passed; True once it has ended."""
        end = None if timeout is None else time.monotonic() + timeout
        while not self.poll().ended and (end is None or time.monotonic() < end):
            time.sleep(every)
        return self.ended

    @property
    def ended(self) -> bool:
        return self.state in ("done", "failed")

    def snapshot(self) -> dict[str, Any]:
        """Its progress as plain values (the prediction apart)."""
        return {
            "state": self.state,
            "error": self.error,
            "z": self.z,
            "run_id": self.run_id,
            "source": self.source,
            "budget_s": self.budget_s,
            "elapsed_s": (self.total_s or time.time() - self.started),
            "trained_s": self.trained_s,
            "steps": self.steps,
            "first_step_s": self.first_step_s,
            "phases": dict(self.phases),
            "judgement": self.judgement,
        }


def _not_scored(ws: Workspace, run_id: str) -> None:
    """Record no best Dice for a round: its "validation" scored crops of the slices it trained on
    (nothing is held out), so the 1.0 it reached there was no score (it showed as "best val. Dice
    1.000" beside real runs). Its epoch rows keep that number as the training curve."""
    ws.update_run(run_id, best_dice=None)


def _predict(ws: Workspace, dataset: str, z: int, checkpoint: Path) -> np.ndarray:
    from ..nn.checkpoint import load_checkpoint
    from ..predict.config import PredictConfig
    from ..predict.inferer import predict_slice
    from ..predict.probabilities import labels_from_probs

    ckpt = load_checkpoint(checkpoint, device="cpu")
    return labels_from_probs(predict_slice(ckpt, ws.read_slice(dataset, z), PredictConfig(device="cpu")), 0.5)


def _judge_round(ws: Workspace, dataset: str, z: int, prediction: np.ndarray) -> dict[str, Any] | None:
    if ws.dataset(dataset).n_classes != 2:
        return None
    try:
        return judge(prediction, ws.read_slice(dataset, z), ws.read_mask(dataset, z))
    except Exception:  # noqa: BLE001 - the prediction still shows, unjudged
        return None


def round_message(snap: dict[str, Any]) -> list[tuple[str, str]]:
    """``[(kind, words), ...]`` of a round's :meth:`LiveRound.snapshot` for the page, kind ``error``
    (it failed), ``caption`` (its progress or outcome) or ``warning`` (done, not yet usable)."""
    if snap["state"] == "failed":
        return [("error", f"The round failed: {snap['error']}")]
    first = snap.get("first_step_s")
    started = f"first step after {first:.0f} s" if first is not None else "no step yet"
    if snap["state"] != "done":
        if snap["state"] == "predicting":
            what = "Predicting the slice"
        elif first is None:
            what = "Starting: reading the labeled slices and building the network (no step yet)"
        else:
            what = f"Training on your strokes ({snap['steps']} steps, {started})"
        return [("caption", f"{what}: {snap['elapsed_s']:.0f} s of about {snap['budget_s']:.0f} s.")]
    j = snap.get("judgement")
    said = (
        ""
        if j is None
        else f"; foreground Dice on your strokes {j['model']:.2f}, a plain threshold {j['baseline']:.2f}"
    )
    out = [
        (
            "caption",
            f"Prediction of slice {snap['z']} after {snap['elapsed_s']:.0f} s ({snap['steps']} steps from "
            f"{snap['source']}, {started}{said}): it shows pale under your strokes. Add strokes where it is "
            "wrong and train again.",
        )
    ]
    if j is not None and not j["usable"]:
        out.append(
            (
                "warning",
                "The model is not yet usable: on your strokes of this slice a plain threshold of the image "
                "does as well. Add strokes of both classes where it is wrong and train again.",
            )
        )
    return out


def budgets() -> tuple[float, float]:
    """Seconds of training of the first round and of each later one: :data:`FIRST_BUDGET_S` and
    :data:`LATER_BUDGET_S`, or ``SEGDASH_LIVE_BUDGET_S="FIRST,LATER"`` (e.g. ``"60,30"``: longer
    rounds on a slow machine; the browser test's shorter ones).

    Raises:
        SegDashError: the variable is not two positive numbers."""
    text = os.environ.get("SEGDASH_LIVE_BUDGET_S", "").strip()
    if not text:
        return FIRST_BUDGET_S, LATER_BUDGET_S
    try:
        first, later = (float(v) for v in text.split(","))
    except ValueError:
        first = later = -1.0
    if not (0 < first < 3600 and 0 < later < 3600):
        raise SegDashError(f"SEGDASH_LIVE_BUDGET_S must be two numbers of seconds, as '40,20'; it is {text!r}")
    return first, later


def start_round(ws: Workspace, dataset: str, z: int, budget_s: float | None = None) -> LiveRound:
    """Start a round on ``dataset`` that predicts slice ``z``; it continues from the newest live round.

    Raises:
        ValueError: no slice has a labeled pixel, a round or a training job is running already.
    """
    pressed = time.time()
    _after_previous(ws, dataset)
    live = _live_runs(ws, dataset)
    if live:
        resume, source = live[0]["run_id"], f"live run {live[0]['run_id']}"
    else:
        current = model_sources(ws, dataset)["run"]
        resume = None if current is None else current["run_id"]
        source = "a fresh network" if current is None else f"the model of run {resume}"
    budget = float(budget_s if budget_s is not None else budgets()[0 if not live else 1])
    # a resumed round keeps its network (the request takes the checkpoint's model) with this recipe
    cfg = live_config(ws.dataset(dataset).n_classes)
    job = start_training(ws, dataset, cfg, resume_from=resume, origin="live", deadline=pressed + budget)
    return LiveRound(ws, dataset, int(z), budget, source=source, run_id=job.run_id, started=pressed, job=job)


def _after_previous(ws: Workspace, dataset: str) -> None:
    """Refuse a second round while one trains; wait for the worker of one that has ended (its
    outcome recorded, its process exiting) rather than refuse the next press."""
    job = registry().active(ws)
    if job is None or job.origin != "live":
        return
    if job.state in ACTIVE_RUN_STATES:
        raise SegDashError("a round is running already: wait for its prediction")
    job.join(_FINISHING_S)
