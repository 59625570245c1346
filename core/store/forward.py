"""One signature, stated once: :func:`forward` makes a method of a class that composes its parts
(:class:`~core.store.workspace.Workspace` holds ``masks`` and ``catalog``; the
:class:`~core.store.catalog.Catalog` holds ``run_rows``) call the same method of one part, with that
method's name, signature and docstring, instead of a wrapper that repeats its parameters.

Example:
    >>> class Rows:
    ...     def add(self, a: int, b: int = 1) -> int:
    ...         '''Add.'''
    ...         return a + b
    >>> class Owner:
    ...     def __init__(self): self.rows = Rows()
    ...     add = forward("rows", Rows.add)
    >>> Owner().add(2, b=3), Owner.add.__doc__
    (5, 'Add.')
"""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

__all__ = ["forward"]

R = TypeVar("R")


def forward(part: str, method: Callable[..., R]) -> Callable[..., R]:
    """A method that calls ``method`` (a function of the part's class) on the owner's attribute
    ``part`` with the arguments it was given; ``inspect.signature`` and ``help`` show ``method``'s."""
    name = method.__name__

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> R:
        return getattr(getattr(self, part), name)(*args, **kwargs)

    return call
