"""2.5D context: a slice with its neighbours in z as channels, mirrored at the ends of the stack.

A network trained with ``context`` c sees, for slice z, the slices z - c .. z + c of the (Z, Y, X)
stack as 2c + 1 input channels; training, validation and prediction all read them through
:func:`neighbourhood`, so the same slice gets the same input everywhere. Past an end of the stack
the indices are mirrored about the end slice (numpy's ``reflect``: ..., 2, 1, [0], 1, 2, ...), so an
edge slice sees real sections, not repeated copies of itself.

Example:
    >>> import numpy as np
    >>> stack = np.arange(4)[:, None, None] * np.ones((4, 2, 2), np.uint8)
    >>> neighbourhood(stack, 0, 2)[:, 0, 0].tolist()
    [2, 1, 0, 1, 2]
"""

from __future__ import annotations

import numpy as np

from ..errors import SegDashError

__all__ = ["mirrored_index", "context_indices", "neighbourhood"]


def mirrored_index(i: int, n: int) -> int:
    """Index ``i`` folded into ``0 .. n - 1`` by mirroring about the end slices (period ``2 (n - 1)``).

    >>> [mirrored_index(i, 4) for i in range(-3, 7)]
    [3, 2, 1, 0, 1, 2, 3, 2, 1, 0]
    """
    if n <= 1:
        return 0
    period = 2 * (n - 1)
    i = abs(int(i)) % period
    return i if i < n else period - i


def context_indices(z: int, context: int, n: int) -> list[int]:
    """The slice indices fed for slice ``z`` of ``n``: ``z - context .. z + context``, mirrored."""
    if not 0 <= z < n:
        raise SegDashError(f"slice {z} out of range 0..{n - 1}")
    return [mirrored_index(z + d, n) for d in range(-int(context), int(context) + 1)]


def neighbourhood(stack: np.ndarray, z: int, context: int) -> np.ndarray:
    """Slice ``z`` of a (Z, Y, X) stack with ``context`` neighbours each side.

    Returns:
        (2 * context + 1, Y, X) in the stack's dtype, in memory; channel ``context`` is slice ``z``.
    """
    if np.ndim(stack) != 3:
        raise SegDashError(f"expected a (Z, Y, X) stack, got shape {np.shape(stack)}")
    return np.stack([np.asarray(stack[i]) for i in context_indices(z, context, stack.shape[0])])
