"""Label page actions: callbacks of its buttons and keys (they run before the page, so the page
already shows their result). UI only: each reads session state, calls core, and says what happened
on the status line."""

from __future__ import annotations

import streamlit as st

from core.data.masks import UNLABELED
from core.view import canvas as cv
from core.view.strokes import next_brush, next_zoom, pan_center
from core.workflow.assist import model_suggestion
from core.workflow.labeling import next_class, next_unlabeled
from pages._common import problem, workspace
from pages._keys import new_actions, value
from pages._label_state import KEYS_WIDGET, TOOLS, ZOOMS, drop_strokes, hint, kept, put, say, scribbling, strokes

__all__ = ["go", "on_pick", "step", "to_next_unlabeled", "save", "undo", "redo", "restore", "clear"]
__all__ += ["from_model", "on_pan", "on_key"]


def go(z: int) -> None:
    st.session_state["slice"] = z


def on_pick() -> None:
    go(st.session_state["label_slice_pick"])


def step(n: int, by: int) -> None:
    go((st.session_state["slice"] + by) % n)


def to_next_unlabeled(statuses: tuple[str, ...]) -> None:
    k = next_unlabeled(statuses, st.session_state["slice"])
    go(k) if k is not None else say("info", "Every slice has a mask.")


def save(ws, dataset: str, z: int) -> None:
    paint, base, n = strokes(dataset, z)
    if paint is None or not (paint >= 0).any():
        say("info", "Nothing to save: no unsaved strokes on this slice.")
        return
    try:
        info = ws.dataset(dataset)
        saved = ws.edit_mask(
            dataset,
            z,
            lambda m: cv.apply_paint(m, paint, info.shape[1:], fill=UNLABELED if scribbling() else 0),
            base_version=base,
            source="drawn",
            drawn=paint >= 0,
        )
    except Exception as exc:  # noqa: BLE001 - a refusal, or a folder made unwritable: said, strokes kept
        say("error", f"Not saved (your strokes are kept): {problem(exc)[0]}")
        return
    drop_strokes(dataset, z)
    text = f"Saved {info.slice_names[z]}: version {saved.version} ({saved.status}, {n} stroke(s))."
    if saved.merged:
        text += (
            f" Someone saved version {saved.parent} of this slice meanwhile: your strokes were applied on "
            "top of it, so both are kept."
        )
    say("warning" if saved.merged else "success", text)


def _tell(kind: str, do, words) -> None:
    """Run ``do()`` and say ``words(result)``; a refusal is said as an error."""
    try:
        result = do()
    except Exception as exc:  # noqa: BLE001 - a refusal, or an unwritable folder: said, not a traceback
        say("error", problem(exc)[0])
        return
    say(kind, words(result))


def undo(ws, dataset: str, z: int) -> None:
    _tell(
        "info",
        lambda: ws.undo_mask(dataset, z),
        lambda v: (
            (f"Undone: back to version {v}." if v else "Undone: the slice shows no mask.")
            + f" Redo ({hint('redo')}) or the history brings the undone version back."
        ),
    )


def redo(ws, dataset: str, z: int) -> None:
    _tell("info", lambda: ws.redo_mask(dataset, z), lambda v: f"Redone: version {v}.")


def restore(ws, dataset: str, z: int, key: str) -> None:
    old = st.session_state[key]
    _tell(
        "success",
        lambda: ws.restore_mask(dataset, z, old),
        lambda v: f"Restored version {old} as version {v} (the history keeps every version).",
    )


def clear(dataset: str, z: int) -> None:
    _, _, n = strokes(dataset, z)
    drop_strokes(dataset, z)
    say("info", f"Cleared {n} unsaved stroke(s) of this slice.")


def from_model(ws, dataset: str, z: int, base: int) -> None:
    try:
        labels, source = model_suggestion(ws, dataset, z)
        version = ws.save_mask(
            dataset, z, labels, status="from-prediction", source=f"model:{source}", base_version=base
        )
    except Exception as exc:  # noqa: BLE001 - said, not a traceback
        say("warning", problem(exc)[0])
        return
    say("success", f"Started from the {source} (version {version}, from-prediction): correct it and Save.")


def _pan(dy: float, dx: float, shape: tuple[int, int], window: cv.ZoomWindow) -> None:
    if kept("label_zoom") in (None, 1):
        return
    center = (
        st.session_state.get("label_cy", window.center[0]),
        st.session_state.get("label_cx", window.center[1]),
    )
    st.session_state["label_cy"], st.session_state["label_cx"] = pan_center(
        center, dy, dx, (window.height, window.width), shape
    )


def on_pan(shape: tuple[int, int]) -> None:
    target = value("label_map", "pan")
    if target:
        st.session_state["label_cy"], st.session_state["label_cx"] = pan_center(target, 0, 0, (0, 0), shape)


def on_key() -> None:
    """Run the actions of the keys pressed, each once, on the slice shown (``label_ctx``) or moved to."""
    ctx = st.session_state.get("label_ctx")
    actions = new_actions(KEYS_WIDGET, "label_keys_seen")
    if not ctx:
        return
    ws = workspace()
    try:
        for action in actions:
            z = st.session_state["slice"] if st.session_state.get("dataset") == ctx["dataset"] else ctx["z"]
            if action in ("left", "right", "up", "down", "zoom_in", "zoom_out") and z != ctx["z"]:
                continue  # the window shown belongs to another slice's page: skip rather than guess
            _act(ws, ctx, z, action)
    except Exception as exc:  # noqa: BLE001 - e.g. the dataset was deleted meanwhile
        say("error", problem(exc)[0])


_MOVES = {"left": (0, -0.25), "right": (0, 0.25), "up": (-0.25, 0), "down": (0.25, 0)}


def _act(ws, ctx: dict, z: int, action: str) -> None:
    dataset = ctx["dataset"]
    if action == "save":
        save(ws, dataset, z)
    elif action == "undo":
        undo(ws, dataset, z) if ws.can_undo(dataset, z) else say("info", "Nothing to undo on this slice.")
    elif action == "redo":
        redo(ws, dataset, z)
    elif action in TOOLS:
        put("label_tool", action)
    elif action in ("bigger", "smaller"):
        put("label_brush", next_brush(kept("label_brush"), action == "bigger"))
    elif action in ("next", "previous"):
        step(ctx["n"], 1 if action == "next" else -1)
    elif action == "class":
        k = st.session_state.get("label_class", 1)
        st.session_state["label_class"] = next_class(k, ctx["n_classes"], ctx.get("first", 1))
    elif action == "mask":
        put("label_show_mask", not kept("label_show_mask"))
    elif action in ("zoom_in", "zoom_out"):
        put("label_zoom", next_zoom(kept("label_zoom"), ZOOMS, 1 if action == "zoom_in" else -1))
    elif action in _MOVES:
        _pan(*_MOVES[action], ctx["shape"], ctx["window"])
