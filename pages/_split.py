"""Train and Predictions pages: which slices validate and test a run, and the scores of each part.

UI only: the split is :func:`core.train.data.plan_split`'s (previewed here with the form's settings),
the run's tuned decision and test scores come from :func:`core.train.finish.finish_run` through the
job snapshot or the run's catalog record.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.data.zrange import format_slices, parse_slices
from core.predict.parts import scores_by_part
from core.train.config import SPLITS, TrainConfig
from core.train.data import looks_like_stack, plan_split
from core.workflow.runs import CLASS_MEAN_DICE, FOREGROUND_DICE
from pages._common import shown

__all__ = ["split_form", "finish_report", "prediction_parts_table"]

_MODE_LABELS = {
    "auto": "automatic (block for a stack)",
    "block": "a contiguous block at the end",
    "random": "random slices",
}
_PERSIST = "session"


def split_form(info: Any, labeled: list[int], base: TrainConfig, val_fraction: float) -> dict[str, Any]:
    """The form's validation / test / context settings, with a preview of the split they give.

    Returns the config overrides (``val_split``, ``val_gap``, ``val_slices``, ``test_slices``,
    ``context``); unparsable slice lists are shown as an error and left out.
    """
    stack = looks_like_stack(info.slice_names)
    with st.expander("Validation, test slices and 2.5D context", expanded=False):
        s1, s2, s3 = st.columns([2, 1, 1])
        mode = s1.selectbox(
            "Validation slices",
            SPLITS,
            index=SPLITS.index(base.val_split),
            format_func=_MODE_LABELS.get,
            key="train_split_mode",
            persist_state=_PERSIST,
            help="Neighbouring slices of a stack are nearly identical: a validation slice between two "
            "training slices scores too well. A block at the end, with a gap, scores like unseen data.",
        )
        gap = s2.number_input(
            "Gap (slices)",
            0,
            100,
            base.val_gap,
            key="train_gap",
            persist_state=_PERSIST,
            help="Training slices this close to a validation or test slice are left out.",
        )
        context = s3.number_input(
            "2.5D context",
            0,
            8,
            base.context,
            key="train_context",
            persist_state=_PERSIST,
            help="Feed each slice with this many neighbours on each side as extra channels "
            "(for stacks of adjacent sections). 0: the slice alone.",
        )
        fields = (
            ("Choose validation slices (optional)", "val", "e.g. 100-119",
             "Slice indices from 0; overrides the automatic choice."),
            ("Test slices, never trained on (optional)", "test", "e.g. 130-164",
             "Kept out of training and validation; scored once when the run ends."),
        )  # fmt: skip
        val_text, test_text = (
            col.text_input(label, key=f"train_{key}_slices", placeholder=eg, persist_state=_PERSIST, help=tip)
            for col, (label, key, eg, tip) in zip(st.columns(2), fields)
        )
        out: dict[str, Any] = {"val_split": mode, "val_gap": int(gap), "context": int(context)}
        try:
            out["val_slices"] = parse_slices(val_text)
            out["test_slices"] = parse_slices(test_text)
            split = plan_split(
                labeled,
                info.slice_names,
                mode=mode,
                val_fraction=val_fraction,
                gap=max(int(gap), int(context)),
                seed=base.seed,
                val_slices=out["val_slices"] or None,
                test_slices=out["test_slices"],
            )
        except ValueError as exc:
            st.error(shown(str(exc)))
            out.pop("val_slices", None), out.pop("test_slices", None)
            return out
        st.caption(
            ("This dataset is a stack (consecutive slice names): " if stack else "Separate images: ")
            + split.describe()
            + "."
        )
        for note in split.notes:
            st.caption(note)
    return out


def _fmt(v: Any) -> str:
    return "–" if v is None else f"{v:.3f}"


def finish_report(snap: Any) -> None:
    """The run's split, its decision tuned on validation, and validation beside test scores."""
    split = f"train {format_slices(snap['train_slices'])} · validation {format_slices(snap['val_slices'])}"
    if snap.get("test_slices"):
        split += f" · test {format_slices(snap['test_slices'])}"
    st.caption(f"Slices: {split}")
    fin = snap.get("test_scores") or {}
    if fin.get("error"):
        st.warning(f"{fin['error']}; predictions use threshold 0.5.", icon=":material/warning:")
    if not fin.get("decision"):
        return
    d = fin.get("decision") or {}
    cleanup = [f"objects < {d['min_size']} px removed"] if d.get("min_size") else []
    cleanup += [f"holes < {d['hole_size']} px filled"] if d.get("hole_size") else []
    st.caption(
        f"Decision tuned on the validation slices: threshold {d.get('threshold', 0.5):.2f}"
        + (f", class weights {d['class_weights']}" if d.get("class_weights") else "")
        + (f", {', '.join(cleanup)}" if cleanup else "")
        + ". Predictions use it unless you set a threshold."
    )
    lines = [
        f"| slices | {FOREGROUND_DICE} | {CLASS_MEAN_DICE} | foreground IoU | class-mean IoU | pixel error |",
        "|---|---|---|---|---|---|",
    ]
    for part, label in (("val", "validation (chose the checkpoint and decision)"), ("test", "test (never seen)")):
        s = fin.get(part)
        if s:
            cells = [s.get(k) for k in ("dice_fg", "mean_dice", "iou_fg", "mean_iou", "pixel_error")]
            lines.append(f"| {label} | " + " | ".join(_fmt(v) for v in cells) + " |")
    st.markdown("\n".join(lines))


def prediction_parts_table(summary: dict[str, Any]) -> None:
    """A stored prediction's scores on the test, validation and training slices of its run, apart."""
    rows = scores_by_part(summary)
    measure = FOREGROUND_DICE if len(summary.get("class_names") or ()) <= 2 else CLASS_MEAN_DICE
    iou = measure.replace("Dice", "IoU")
    rows = [{{"mean Dice": measure, "mean IoU": iou}.get(k, k): v for k, v in r.items()} for r in rows]
    if rows:
        st.markdown(
            "**Scores by part of the model's split**, averaged over the slices: the test slices are the honest number."
        )
        st.dataframe(rows, hide_index=True, key="pred_parts")
