"""Small helpers for records that travel as JSON or come from dicts: finite numbers or ``None``
(JSON has no NaN), JSON-safe values, and dataclass settings that refuse unknown keys.

Example:
    >>> finite_or_none(float("nan")) is None, finite_or_none(0.5)
    (True, 0.5)
    >>> json_clean({"a": [1, float("inf")]})
    {'a': [1, None]}
"""

from __future__ import annotations

import math
import numbers
from dataclasses import fields
from typing import Any

import numpy as np

from ..errors import SegDashError

__all__ = ["finite_or_none", "json_clean", "known_keys"]


def finite_or_none(v: Any) -> float | None:
    """``float(v)`` for a finite real number; ``None`` for NaN, infinity, ``None`` or anything else."""
    if isinstance(v, numbers.Real) and math.isfinite(v):
        return float(v)
    return None


def json_clean(value: Any) -> Any:
    """JSON-safe: numpy scalars and arrays to Python, NaN and infinity to ``None``, keys to ``str``."""
    if isinstance(value, dict):
        return {str(k): json_clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_clean(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return finite_or_none(value)
    return value


def known_keys(d: dict[str, Any] | None, cls: type, what: str) -> dict[str, Any]:
    """``dict(d)`` (``{}`` for ``None``) when every key is a field of the dataclass ``cls``; else
    ``ValueError: unknown <what> setting(s) [...]; known: [...]``."""
    d = dict(d or {})
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise SegDashError(f"unknown {what} setting(s) {unknown}; known: {sorted(known)}")
    return d
