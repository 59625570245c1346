"""The live label-train-correct loop: "Train on my strokes" on the Label page.

A :class:`LiveRound` fine-tunes a U-Net on the dataset's labels as they are (partial masks: strokes;
complete ones too) for a bounded time, then predicts one slice, all in a background thread, so
the page polls it and stays usable. It runs the dashboard's own :class:`~core.train.job.TrainingJob`
through :func:`~core.train.registry.registry` (one job per workspace; its run is recorded like any
other, with ``-live-`` in its id) and stops it at the round's deadline: the job keeps the weights
reached in ``last.pt`` (:class:`~core.train.handlers.checkpoints.Checkpoints`), which the round predicts with.

A round's prediction is judged on the strokes of the slice it predicts (:func:`judge`): its
foreground Dice there beside that of a fixed threshold of the raw slice (Otsu's, the foreground on
the side the strokes say); a round that does no better is said to be not yet usable
(:func:`round_message`). The strokes were trained on, so this flatters the network: a round that
loses to a plain threshold even there is surely not usable (``benchmarks/bench_live.py`` compares
both on never-labeled slices against their truth).

Each round continues from the newest live run of the dataset; the first from the dataset's current
model (the newest finished run with a checkpoint) when there is one, else from a small fresh
network (:func:`live_config`). The time budget counts from the press of the button: the job's
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
from ..store.workspace import Workspace
from ..train.config import TrainConfig, default_config
from ..train.job import TrainingJob
from ..train.registry import registry
from .assist import model_sources
from .live_judge import foreground_above, judge, threshold_baseline

__all__ = [
    "LiveRound",
    "live_config",
    "start_round",
    "current_round",
    "warm_up",
    "budgets",
    "judge",
    "foreground_above",
    "threshold_baseline",
    "round_message",
    "FIRST_BUDGET_S",
    "LATER_BUDGET_S",
]

FIRST_BUDGET_S = 40.0  # a fresh network: the first prediction should show within a minute of the press
LATER_BUDGET_S = 20.0  # a warm one: each later round within half a minute
MIN_STEPS = 3  # a round stops at its deadline only once it has taken this many steps
MARK = "-live-"
_ROUNDS: dict[tuple[str, str], LiveRound] = {}
_LOCK = threading.Lock()
_WARMING: threading.Thread | None = None


def warm_up() -> threading.Thread:
    """Import, in a background thread, what a round's training needs and the server has not loaded
    yet: the losses of segmentation-models-pytorch (which imports timm; 9.5 s of a round's 22 s
    before its first step, measured on the loaded 2-core test machine) and the tiled inference
    (MONAI) its prediction uses. Called when this module is
    first imported (the Label page imports it), so the import is done, or under way, by the press;
    the round's own import then waits for it instead of starting over. Once per process: returns
    that thread."""
    global _WARMING
    with _LOCK:
        if _WARMING is None:
            _WARMING = threading.Thread(target=_import_for_training, name="segdash-live-warm-up", daemon=True)
            _WARMING.start()
        return _WARMING


def _import_for_training() -> None:
    try:
        import segmentation_models_pytorch.losses  # noqa: F401 - the Loss of core.train.loop imports it

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


def _live_runs(ws: Workspace, dataset: str) -> list[dict[str, Any]]:
    """Live runs of ``dataset`` with a checkpoint on disk, newest first."""
    runs = ws.runs_with_checkpoints(dataset, keys=("last_checkpoint", "best_checkpoint"))
    return [r for r in runs if MARK in r["run_id"] and r["state"] not in ("queued", "running", "stopping")]


@dataclass
class LiveRound:
    """One round: train until ``budget_s`` after :meth:`start`, then predict slice ``z``.

    Attributes:
        state: ``training``, ``predicting``, ``done`` or ``failed`` (``error`` says why).
        source: what it continued from, in words; ``run_id`` its training run.
        prediction: (Y, X) uint8 class indices of slice ``z`` once ``done``.
        steps: optimisation steps taken; ``trained_s``, ``total_s``: seconds to the stop and to the prediction.
        first_step_s: seconds from the press to the first step (``None`` before it); ``phases``: when
            the job was seen ``running``, past its ``split`` (and window), at its first ``step``.
        judgement: :func:`judge` of the prediction (``None``: not judged).
    """

    ws: Workspace
    dataset: str
    z: int
    budget_s: float
    resume_from: str | None = None
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
    _thread: threading.Thread | None = None

    def start(self) -> LiveRound:
        info = self.ws.dataset(self.dataset)
        cfg = live_config(info.n_classes)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.run_id = f"{self.dataset[:30]}{MARK}{stamp}-{int(time.time_ns() % 10_000):04d}"
        # a resumed run keeps its network (TrainingJob takes the checkpoint's model) with this recipe
        job = registry().start(
            TrainingJob(self.ws, self.dataset, cfg, run_id=self.run_id, resume_from=self.resume_from)
        )
        self._thread = threading.Thread(target=self._run, args=(job,), name=f"segdash-live-{self.run_id}", daemon=True)
        self._thread.start()
        return self

    def _run(self, job: TrainingJob) -> None:
        try:
            while not job.join(0.2):
                snap = job.snapshot()
                self.steps = _steps(snap)
                self._seen(snap)
                if time.time() - self.started >= self.budget_s and self.steps >= MIN_STEPS:
                    job.stop()
            snap = job.snapshot()
            self.trained_s = time.time() - self.started
            _not_scored(self.ws, self.run_id)
            self.steps = max(self.steps, _steps(snap))
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

    def _seen(self, snap: Any) -> None:
        """When the job was first seen running, past its split and window (its device recorded), and
        past its first step: seconds from the press, to within the 0.2 s poll (``phases``)."""
        now = time.time() - self.started
        for phase, reached in (("running", snap.state != "queued"), ("split", bool(snap.device)), ("step", self.steps)):
            if reached and phase not in self.phases:
                self.phases[phase] = round(now, 1)
        if self.first_step_s is None and self.steps:
            self.first_step_s = now

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the round; True once it has ended (done or failed)."""
        if self._thread is not None:
            self._thread.join(timeout)
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


def _steps(snap: Any) -> int:
    """Optimisation steps a job snapshot has taken since its start."""
    return int(snap.step) + max(0, int(snap.epoch) - int(snap.start_epoch)) * int(snap.steps_per_epoch)


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
    """Start a round on ``dataset`` that predicts slice ``z``; it continues from the newest live run.

    Raises:
        ValueError: no slice has a labeled pixel, a round or a training job is running already.
    """
    key = (str(ws.root), dataset)
    with _LOCK:
        running = _ROUNDS.get(key)
        if running is not None and running.state in ("training", "predicting"):
            raise SegDashError("a round is running already: wait for its prediction")
        live = _live_runs(ws, dataset)
        if live:
            resume, source = live[0]["run_id"], f"live run {live[0]['run_id']}"
        else:
            current = model_sources(ws, dataset)["run"]
            resume = None if current is None else current["run_id"]
            source = "a fresh network" if current is None else f"the model of run {resume}"
        first = not live
        budget = budget_s if budget_s is not None else budgets()[0 if first else 1]
        r = LiveRound(ws, dataset, int(z), float(budget), resume_from=resume, source=source)
        r.start()
        _ROUNDS[key] = r
    return r


def current_round(ws: Workspace, dataset: str) -> LiveRound | None:
    """The newest round of ``dataset`` in this process (running or ended), if any."""
    with _LOCK:
        return _ROUNDS.get((str(ws.root), dataset))


warm_up()
