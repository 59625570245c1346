"""Label page: "Train on my strokes", the live label-train-correct loop (:mod:`core.workflow.live`).

UI only. The button saves the slice's unsaved strokes, then starts a round in the background; a
fragment polls it every second and, once the round has predicted the slice, reruns the page so the
prediction shows under the strokes. The rest of the page stays usable meanwhile.
"""

from __future__ import annotations

import streamlit as st

from core.workflow.live import current_round, round_message, start_round
from pages._common import problem
from pages._label_actions import save
from pages._label_state import say, strokes

__all__ = ["live_panel", "shown_prediction"]


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
    say("info", f"Training on your strokes from {r.source} for about {r.budget_s:.0f} s; keep drawing meanwhile.")


def live_panel(ws, dataset: str, z: int) -> None:
    """The button and the round's progress (polled while it runs)."""
    r = current_round(ws, dataset)
    running = r is not None and r.state in ("training", "predicting")
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
        r = current_round(ws, dataset)
        if r is None:
            st.caption("Scribble a few strokes per class, then train: a prediction appears within a minute.")
            return
        for kind, words in round_message(r.snapshot()):  # what to say: core.workflow.live
            getattr(st, kind)(words)
        if running and r.state in ("done", "failed"):
            st.rerun()  # the whole page: the prediction goes under the canvas

    show()


def shown_prediction(ws, dataset: str, z: int) -> tuple[str, object]:
    """``(round's run id, (Y, X) labels)`` of the newest round's prediction when it is of slice ``z``,
    else ``("", None)``."""
    r = current_round(ws, dataset)
    if r is None or r.state != "done" or r.z != z or r.prediction is None:
        return "", None
    return r.run_id, r.prediction
