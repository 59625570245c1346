"""Slice indices as text: ``"0-9, 20"`` <-> ``[0, 1, ..., 9, 20]`` (for forms and the command line).

Example:
    >>> parse_slices("0-3, 7,9-10")
    [0, 1, 2, 3, 7, 9, 10]
    >>> format_slices([0, 1, 2, 3, 7, 9, 10])
    '0-3, 7, 9-10'
"""

from __future__ import annotations

from typing import Sequence

from ..errors import SegDashError

__all__ = ["parse_slices", "format_slices"]


def parse_slices(text: str | None) -> list[int]:
    """Sorted unique slice indices from ``"a-b, c, ..."`` (ranges inclusive); empty text gives ``[]``."""
    out: set[int] = set()
    for part in (text or "").replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            a, b = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise SegDashError(f"slices must look like 0-9, 20 (indices from 0); got {part!r}") from None
        if a < 0 or b < a:
            raise SegDashError(f"slice range {part!r} must be low-high with 0 <= low <= high")
        out.update(range(a, b + 1))
    return sorted(out)


def format_slices(zs: Sequence[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``"0-2, 5, 7-8"``; ``"none"`` when empty."""
    out: list[str] = []
    zs = sorted(int(z) for z in zs)
    i = 0
    while i < len(zs):
        j = i
        while j + 1 < len(zs) and zs[j + 1] == zs[j] + 1:
            j += 1
        out.append(str(zs[i]) if i == j else f"{zs[i]}-{zs[j]}")
        i = j + 1
    return ", ".join(out) or "none"
