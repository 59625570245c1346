"""The one error type for users' mistakes: :class:`SegDashError`.

Core raises it (or a subclass: :class:`~core.store.catalog.WorkspaceError`,
:class:`~core.store.records.MaskConflict`, :class:`~core.data.limits.ChannelChoiceNeeded`, ...) with a
message written for the user: a bad file, an unknown dataset, a setting out of range, a full disk.
The pages show it as an error box and ``python -m core`` as one line ``error: ...`` with exit status
2. Any other exception, a plain ``ValueError`` from numpy or torch included, is an internal error:
exit status 1, and on a page a generic message with the details folded away. It derives from
``ValueError``, so ``except ValueError`` still catches it. Any layer may import this module.
"""

__all__ = ["SegDashError"]


class SegDashError(ValueError):
    """A user's mistake, with a message for them: what was refused and what to do instead."""
