"""Label page actions: callbacks of its buttons and keys (they run before the page, so the page
already shows their result). UI only: each reads session state, calls core, and says what happened
on the status line."""

from __future__ import annotations

import time

import streamlit as st

from core.data.masks import UNLABELED
from core.view import canvas as cv
from core.view.label_session import save_words, undo_words
from core.view.strokes import next_brush, next_zoom, pan_center
from core.workflow.assist import model_suggestion
from core.workflow.labeling import next_class, next_unlabeled
from core.workflow.live import warm_up
from pages._common import problem, workspace
from pages._keys import new_actions, value
from pages._label_state import TOOLS, ZOOMS, drop_strokes, hint, kept, newest, put, say, scribbling, strokes, sync

__all__ = ["go", "on_pick", "step", "to_next_unlabeled", "save", "undo", "redo", "restore", "clear"]
__all__ += ["from_model", "on_pan", "on_ui"]


def go(z: int) -> None:
    st.session_state["slice"] = z


def on_pick() -> None:
    """The Slice box's choice. Its option labels change as slices get masks or unsaved strokes; a choice
    made on a label the server no longer has comes back as that label (``"3: name (...)"``), so the
    slice number is read from its start."""
    picked = st.session_state["label_slice_pick"]
    if not isinstance(picked, int):
        head = str(picked).partition(":")[0].strip()
        if not head.isdigit():
            return
        picked = int(head)
    go(picked)


def step(n: int, by: int) -> None:
    """The slice ``by`` away, kept at the first and last (no wrap from slice 0 to the last)."""
    go(min(max(st.session_state["slice"] + by, 0), n - 1))


def to_next_unlabeled(statuses: tuple[str, ...]) -> None:
    k = next_unlabeled(statuses, st.session_state["slice"])
    go(k) if k is not None else say("info", "Every slice has a mask.")


def save(ws, dataset: str, z: int) -> None:
    try:
        paint, base, n = strokes(dataset, z)
        if paint is None or not (paint >= 0).any():
            say("info", "Nothing to save: no unsaved strokes on this slice.")
            return
        info = ws.dataset(dataset)
        before = ws.current_mask_version(dataset, z)
        history = ws.mask_history(dataset, z)
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
    clock = st.session_state.get("label_clock")
    if isinstance(clock, dict) and "saved" not in clock:
        clock["saved"] = time.time()
    say(
        *save_words(
            info.slice_names[z],
            saved.version,
            saved.status,
            n,
            saved.parent if saved.merged else None,
            base_empty=not before and not saved.merged,
            last_version=max((v.version for v in history), default=None),
        )
    )


def _tell(kind: str, do, words) -> None:
    """Run ``do()`` and say ``words(result)``; a refusal is said as an error."""
    try:
        result = do()
    except Exception as exc:  # noqa: BLE001 - a refusal, or an unwritable folder: said, not a traceback
        say("error", problem(exc)[0])
        return
    say(kind, words(result))


def undo(ws, dataset: str, z: int) -> None:
    """Undo: the last unsaved stroke first, then the saved versions."""
    sess = sync()
    step_ = sess.undo_step(dataset, z, ws.can_undo(dataset, z))
    if step_ is None:
        say("info", "Nothing to undo on this slice.")
    elif step_ == "stroke":
        sess.undo_stroke(dataset, z)
        say("info", f"Removed the last unsaved stroke ({sess.count(dataset, z)} left on this slice).")
    else:
        undone = ws.current_mask_version(dataset, z)
        try:
            v = ws.undo_mask(dataset, z)
        except ValueError as exc:
            say("error", str(exc))
            return
        say(*undo_words(v, undone, hint("redo")))


def redo(ws, dataset: str, z: int) -> None:
    """Redo a saved version; nothing to redo is said as Undo says it (not as an error)."""
    if not ws.can_redo(dataset, z):
        say("info", "Nothing to redo on this slice.")
        return
    _tell("info", lambda: ws.redo_mask(dataset, z), lambda v: f"Redone: version {v}.")


def restore(ws, dataset: str, z: int, key: str) -> None:
    old = st.session_state[key]
    _tell(
        "success",
        lambda: ws.restore_mask(dataset, z, old),
        lambda v: f"Restored version {old} as version {v} (the history keeps every version).",
    )


def clear(dataset: str, z: int) -> None:
    n = len(drop_strokes(dataset, z))
    say("info", f"Cleared {n} unsaved stroke(s) of this slice.")


def from_model(ws, dataset: str, z: int, base: int) -> None:
    # the prediction imports torch and MONAI, which the live loop's warm-up may be importing in its
    # thread: wait for it (Python 3.11's compiler is not safe in two threads at once: "SystemError: AST
    # constructor recursion depth mismatch", seen in the AppTest), then import nothing twice
    warm_up().join(timeout=300)
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


# what a canvas message may do without rerunning the whole page: the canvas's fragment reruns alone
# (strokes as a draft) or first (a save or undo: the new tint at once, then the page, see ``refresh``)
_IN_FRAGMENT = {"save", "undo", "redo"}


def on_ui() -> None:
    """The canvas sent its strokes (and maybe shortcuts): take the strokes, run each new shortcut once,
    on the slice the browser showed when it was pressed.

    The canvas lives in a fragment (``pages/label.py``), so by default only the fragment reruns: a
    draft of strokes does not rerun or grey the page. A save, undo or redo asks the canvas to send
    ``refresh`` once it shows the new tint, which reruns the whole page (history, status line, the
    Slice box's words); every other shortcut reruns the whole page at once (``label_whole``, see ``pages/label.py``)."""
    t0 = time.time()
    ctx = st.session_state.get("label_ctx")
    sync()
    actions = new_actions(newest(), "label_keys_seen", name="ui")
    if not ctx:
        return
    ws = workspace()
    whole = False
    try:
        for action, where in actions:
            if action == "refresh":
                whole = True
                continue
            dataset, _, zs = (where or "").rpartition("/")
            if dataset != ctx["dataset"] or not zs.isdigit():
                continue  # pressed on another dataset's page: skip rather than guess
            z = int(zs)
            if action in ("left", "right", "up", "down", "zoom_in", "zoom_out") and z != ctx["z"]:
                continue  # the window shown belongs to another slice's page: skip rather than guess
            if action == "save":
                st.session_state["label_clock"] = {"key": t0}  # Ctrl+S's way through the server (timings)
            _act(ws, ctx, z, action)
            if action in _IN_FRAGMENT:
                st.session_state["label_refresh"] = f"{t0:.6f}"
            else:
                whole = True
    except Exception as exc:  # noqa: BLE001 - e.g. the dataset was deleted meanwhile
        say("error", problem(exc)[0])
        whole = True
    if whole:
        # the whole page, not only the canvas's fragment: the fragment's body asks for it (a plain
        # st.rerun() here, in the callback, reran the page but its canvas data reached the browser
        # only when the run ended, seen 2.5 s after "." in the browser test)
        st.session_state["label_whole"] = True


_MOVES = {"left": (0, -0.25), "right": (0, 0.25), "up": (-0.25, 0), "down": (0.25, 0)}


def _act(ws, ctx: dict, z: int, action: str) -> None:
    dataset = ctx["dataset"]
    if action == "save":
        save(ws, dataset, z)
    elif action == "undo":
        undo(ws, dataset, z)
    elif action == "redo":
        redo(ws, dataset, z)
    elif action == "undo_stroke":
        say("info", f"Removed the last unsaved stroke; Redo ({hint('redo')}) puts it back.")
    elif action == "redo_stroke":
        say("info", "Put the stroke back.")
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
