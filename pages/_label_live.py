"""Label page: "Train on my strokes", the live label-train-correct loop (:mod:`core.workflow.live`).

UI only. The page keeps its round in the session (``label_live_round``). The button saves the
slice's unsaved strokes, then starts a round: a training request with a deadline, trained by the
same worker process as the Train page's runs (one the page started ahead as it opened). A fragment
polls the round every second (its progress from the catalog); the poll that finds it ended predicts
the slice and reruns the page so the prediction shows under the strokes. The rest of the page stays
usable meanwhile.
"""

from __future__ import annotations

import streamlit as st

from core.workflow.live import LiveRound, round_message, start_round, warm_up
from pages._common import problem
from pages._label_actions import save
from pages._label_state import say, strokes

__all__ = ["live_panel", "shown_prediction", "ROUND_KEY"]

ROUND_KEY = "label_live_round"  # the session's newest round (core.workflow.live.LiveRound)


def _round(ws, dataset: str) -> LiveRound | None:
    """The session's newest round when it is of ``dataset`` in this workspace."""
    r = st.session_state.get(ROUND_KEY)
    if isinstance(r, LiveRound) and r.dataset == dataset and str(r.ws.root) == str(ws.root):
        return r
    return None


def _train(ws, dataset: str, z: int) -> None:
    paint, _, _ = strokes(dataset, z)
    if paint is not None and (paint >= 0).any():
        save(ws, dataset, z)
    if not ws.labeled_slices(dataset):
        say("info", "Draw a few strokes of each class first (Scribbles mode), then train on them.")
        return
    try:
        r = start_round(ws, dataset, z)
    except Exception as exc:  # noqa: BLE001 - a refusal, or an unwritable folder: said, not a traceback
        say("error", f"Not started: {problem(exc)[0]}")
        return
    st.session_state[ROUND_KEY] = r
    say("info", f"Training on your strokes from {r.source} for about {r.budget_s:.0f} s; keep drawing meanwhile.")


def live_panel(ws, dataset: str, z: int) -> None:
    """The button and the round's progress (polled while it runs)."""
    warm_up()  # the next round's worker process, started ahead while the user draws
    r = _round(ws, dataset)
    running = r is not None and not r.ended
    left, right = st.columns([1.3, 4], vertical_alignment="center")
    left.button(
        "Train on my strokes",
        key="label_live_train",
        icon=":material/model_training:",
        width="stretch",
        on_click=_train,
        args=(ws, dataset, z),
        disabled=running,
        help="Saves your strokes, fine-tunes the current model (or a small fresh one) on every slice's labels "
        "for about half a minute in the background, then predicts this slice.",
    )
    with right:
        _progress(ws, dataset, running)
    if shown_prediction(ws, dataset, z)[1] is not None:
        left.toggle("Prediction under the strokes", value=True, key="label_show_pred")


def _progress(ws, dataset: str, running: bool) -> None:
    @st.fragment(run_every=1.0 if running else None)
    def show() -> None:
        r = _round(ws, dataset)
        if r is None:
            st.caption("Scribble a few strokes per class, then train: a prediction appears within a minute.")
            return
        r.poll()  # its progress; the slice predicted once its run has ended
        for kind, words in round_message(r.snapshot()):  # what to say: core.workflow.live
            getattr(st, kind)(words)
        if running and r.ended:
            st.rerun()  # the whole page: the prediction goes under the canvas

    show()


def shown_prediction(ws, dataset: str, z: int) -> tuple[str, object]:
    """``(round's run id, (Y, X) labels)`` of the newest round's prediction when it is of slice ``z``,
    else ``("", None)``."""
    r = _round(ws, dataset)
    if r is None or r.state != "done" or r.z != z or r.prediction is None:
        return "", None
    return r.run_id, r.prediction
