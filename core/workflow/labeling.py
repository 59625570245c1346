"""The Label page's steps that are not UI: which slice to label next, the class a shortcut moves to,
and a mask version's source in words.

Example:
    >>> next_unlabeled(("labeled", "unlabeled", "edited", "unlabeled"), 1)
    3
    >>> next_class(2, 3), source_words("accepted:run-7")
    (1, 'accepted from run run-7')
    >>> status_words("edited", "partial", 0.021), status_words("labeled", "complete")
    ('edited, partial: 2.1% labeled', 'labeled, complete')
"""

from __future__ import annotations

from typing import Sequence

__all__ = ["next_unlabeled", "next_class", "source_words", "status_words"]


def next_unlabeled(statuses: Sequence[str], z: int) -> int | None:
    """The first ``unlabeled`` slice after ``z`` (wrapping round), or ``None`` when every slice has a mask."""
    n = len(statuses)
    for step in range(1, n + 1):
        k = (z + step) % n
        if statuses[k] == "unlabeled":
            return k
    return None


def next_class(k: int, n_classes: int, first: int = 1) -> int:
    """The class after ``k``, cycling through ``first .. n_classes - 1``."""
    span = n_classes - first
    return first + (k - first + 1) % span if span > 0 else first


def source_words(source: str) -> str:
    """A mask version's source (``drawn``, ``accepted:<run>``, ``restored:v<n>``, ...) in words."""
    kind, _, what = source.partition(":")
    if what and kind == "accepted":
        return f"accepted from run {what}"
    if what and kind == "restored":
        return f"restored from {what}"
    if what and kind == "model":
        return f"started from the {what}"
    return {"accepted": "accepted prediction"}.get(source, source)


def status_words(status: str, coverage: str, labeled: float | None = None) -> str:
    """A slice's status and what its mask covers (complete, partial strokes, unlabeled), in words."""
    if status == "unlabeled" or coverage == "unlabeled":
        return status if status == "unlabeled" else f"{status}, no pixel labeled"
    if coverage == "partial" and labeled is not None:
        return f"{status}, partial: {100 * labeled:.2g}% labeled"
    return f"{status}, {coverage}"
