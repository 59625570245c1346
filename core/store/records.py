"""What the workspace tells about its datasets, slices and mask versions (frozen records)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..data.masks import coverage
from ..data.records import Record
from ..errors import SegDashError
from .schema import SLICE_STATUSES

__all__ = ["DatasetInfo", "SliceInfo", "MaskConflict", "MaskSave", "MaskVersion", "RunRecord"]


@dataclass(frozen=True)
class DatasetInfo:
    """What the catalog knows of a dataset.

    Attributes:
        name: dataset name.
        shape: (Z, Y, X) of the image stack.
        dtype: stored pixel type of the images (masks are always uint8 class indices).
        class_names: one name per class index.
        slice_names: one name per slice (file stems, or ``<dataset>_<zzzz>`` for stack slices).
        statuses: per slice, one of ``unlabeled``, ``labeled``, ``edited``, ``from-prediction``.
        notices: what the import converted, as told to the user then.
        labeled: per slice, the share of pixels its mask labels (``None``: complete; 0 when unlabeled).
        volume: for a dataset imported by reference, the Zarr volume its images are read from (else ``""``).
    """

    name: str
    shape: tuple[int, int, int]
    dtype: str
    class_names: tuple[str, ...]
    slice_names: tuple[str, ...]
    statuses: tuple[str, ...]
    source: str = ""
    notices: tuple[str, ...] = ()
    labeled: tuple[float | None, ...] = ()
    volume: str = ""

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def coverage(self) -> tuple[str, ...]:
        """Per slice ``complete``, ``partial`` (strokes) or ``unlabeled`` (:func:`~core.data.masks.coverage`)."""
        fractions = self.labeled or (None,) * len(self.statuses)
        return tuple("unlabeled" if s == "unlabeled" else coverage(f) for s, f in zip(self.statuses, fractions))

    def counts(self) -> dict[str, int]:
        """Number of slices of each status, plus ``slices`` (total)."""
        out = {s: 0 for s in SLICE_STATUSES}
        for s in self.statuses:
            out[s] += 1
        out["slices"] = len(self.statuses)
        return out


@dataclass(frozen=True)
class SliceInfo:
    """A slice: its status, current mask version, last change, and the share of pixels its mask labels
    (``labeled``: ``None`` for a complete mask saved before sparse labels)."""

    z: int
    name: str
    status: str
    version: int
    updated: float
    labeled: float | None = None

    @property
    def coverage(self) -> str:
        """``complete``, ``partial`` (strokes) or ``unlabeled``."""
        return "unlabeled" if self.status == "unlabeled" else coverage(self.labeled)


class MaskConflict(SegDashError):
    """A save drawn on version ``base`` of a slice found version ``current`` there: nothing was written."""

    def __init__(self, name: str, z: int, base: int, current: int):
        self.base, self.current = base, current
        super().__init__(
            f"someone saved slice {z} of {name!r} meanwhile (version {current}; your strokes were "
            f"drawn on version {base}): reload"
        )


@dataclass(frozen=True)
class MaskSave:
    """What :meth:`~core.store.workspace.Workspace.edit_mask` wrote: ``version`` with ``status``, on top of ``parent``;
    ``merged`` when that was not the version the strokes were drawn on."""

    version: int
    status: str
    parent: int
    merged: bool


@dataclass(frozen=True)
class MaskVersion:
    """One saved mask version of a slice (see :meth:`~core.store.workspace.Workspace.mask_history`).

    Attributes:
        version: its number (1, 2, ...; files ``<z>.v<version>.png``).
        status: the slice status it stands for (labeled, edited, from-prediction).
        source: ``imported``, ``drawn``, ``accepted`` / ``accepted:<run>``, ``model:<what>``,
            ``restored:v<n>``.
        created: when it was saved (seconds since the epoch).
        parent: the version it was made from (0 = none).
        current: whether the slice shows it now.
    """

    version: int
    status: str
    source: str
    created: float
    parent: int
    current: bool


@dataclass
class RunRecord(Record):
    """A training run as the catalog records it (:meth:`~core.store.catalog.Catalog.run`); it reads like
    the dict it replaces (``run["state"]``), ``to_dict()`` gives that dict.

    Attributes:
        run_id, dataset, created: the run, its dataset, when it was created.
        state: one of :data:`~core.store.catalog.RUN_STATES`; an active run whose process is gone
            reads ``interrupted``. ``error``: the message of a failed run.
        config: the training config (a dict); extra: split, window, resumed_from, class names.
        device, dataset_version: where it trained, and the masks' version it trained on.
        best_checkpoint, last_checkpoint, best_dice, wall_time: its outcome so far.
        owner_pid, owner_host, heartbeat: the process that trains it and when it last said so.
        stop_requested: a stop asked through the catalog (1) or not (0).
        origin: where it was started (:data:`~core.store.schema.RUN_ORIGINS`; ``""``: not recorded).
        progress: what its owner last wrote with its heartbeat: ``epoch, start_epoch, epochs, step,
            steps_per_epoch, eta_s, notes, at`` (``{}`` before its first beat).
    """

    run_id: str
    dataset: str
    created: float
    state: str
    config: dict[str, Any] = field(default_factory=dict)
    device: str = ""
    dataset_version: str = ""
    best_checkpoint: str = ""
    last_checkpoint: str = ""
    best_dice: float | None = None
    wall_time: float = 0.0
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    owner_pid: int | None = None
    owner_host: str | None = None
    heartbeat: float | None = None
    stop_requested: int = 0
    origin: str = ""
    progress: dict[str, Any] = field(default_factory=dict)
