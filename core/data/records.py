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
from dataclasses import asdict, fields
from typing import Any, ClassVar, Iterator

import numpy as np

from ..errors import SegDashError

__all__ = ["finite_or_none", "json_clean", "known_keys", "Record", "Settings"]


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


class Settings:
    """Base of the settings dataclasses (model, augmentation): :meth:`to_dict` for JSON and checkpoints,
    :meth:`from_dict` that takes a partial dict and refuses unknown keys, naming ``WHAT``."""

    WHAT: ClassVar[str] = "settings"

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-able dict of the fields."""
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None):
        """Build from a (possibly partial) dict; missing keys take defaults, unknown keys are refused."""
        return cls(**known_keys(d, cls, cls.WHAT))


class Record:
    """Base of the dataclasses that replace the dicts records travelled as (a job's snapshot, ...): the
    keys are the fields, in one place; :meth:`to_dict` gives the JSON-able dict, and the record still
    reads like that dict (``r["state"]``, ``r.get("eta_s")``, ``dict(r)``)."""

    def to_dict(self) -> dict[str, Any]:
        """The fields as a new dict (lists and dicts in it copied one level deep)."""
        out = {}
        for f in fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v
        return out

    def keys(self) -> list[str]:
        return [f.name for f in fields(self)]  # type: ignore[arg-type]

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in self.keys() else default

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def items(self) -> list[tuple[str, Any]]:
        return [(k, getattr(self, k)) for k in self.keys()]

    def values(self) -> list[Any]:
        return [getattr(self, k) for k in self.keys()]
