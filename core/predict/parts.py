"""A stored prediction's scores apart for each part of its model's split: test, validation, training.

A model scores best on the slices it trained on; the test slices (never trained nor validated on)
are the honest number, so the Predictions page shows them apart. The split comes from the
checkpoint (``summary.json``'s ``split``), the per-slice scores from
:func:`~core.predict.dataset.predict_dataset`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["scores_by_part"]


def scores_by_part(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Mean scores of a stored prediction over the slices of each part of its model's split.

    Args:
        summary: a prediction's ``summary.json`` (its ``split`` and per-slice ``slices`` scores).

    Returns:
        one row per part with scored slices (``slices, n, mean IoU, mean Dice, pixel error``):
        test, validation, training, other labeled slices; empty when the model had no stored split.

    Example:
        >>> rows = scores_by_part({"split": {"train": [0], "val": [1], "test": [2]}, "slices": [
        ...     {"z": z, "iou": 0.5 + z / 10, "dice": 0.6, "pixel_error": 0.1} for z in range(3)]})
        >>> [(r["slices"], r["mean IoU"]) for r in rows]
        [('test (never trained on)', 0.7), ('validation', 0.6), ('training', 0.5)]
    """
    split = summary.get("split") or {}
    parts = {
        "test (never trained on)": set(split.get("test") or []),
        "validation": set(split.get("val") or []),
        "training": set(split.get("train") or []),
    }
    scored = [s for s in summary.get("slices") or [] if s.get("iou") is not None]
    rows = []
    seen: set[int] = set()
    for label, zs in [*parts.items(), ("other labeled slices", None)]:
        mine = [s for s in scored if (s["z"] in zs if zs is not None else s["z"] not in seen)]
        seen |= {s["z"] for s in mine}
        if mine:
            rows.append(
                {
                    "slices": label,
                    "n": len(mine),
                    "mean IoU": round(sum(s["iou"] for s in mine) / len(mine), 4),
                    "mean Dice": round(sum(s["dice"] for s in mine) / len(mine), 4),
                    "pixel error": round(sum(s["pixel_error"] for s in mine) / len(mine), 4),
                }
            )
    return rows if split else []
