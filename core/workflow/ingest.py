"""Importing users' data into the workspace: read images and masks, pair them, store a dataset.

Pairing rules (:func:`pair_masks`):
- an image stack from one multi-slice file and a mask stack from one file pair slice i with slice i;
  their slice counts must match;
- separate files pair by file stem; a mask stem may carry a suffix such as ``_mask`` or ``_label``;
- one image file and one mask file, each on its own, pair with each other whatever their names;
- images without a mask are unlabeled; a mask without an image, or of another shape, is refused
  with the names and both shapes in the message.

Paths typed into the web page are limited to :func:`import_roots` (``$SEGDASH_IMPORT_ROOTS``, by
default the folder the app was started in and the workspace's ``inbox/``); the command line, run
by the user on their own machine, is not limited.

A ZIP or folder with ``images/`` and ``masks/`` (or ``labels/``) sub-folders, as SegDash's own
dataset export writes, is split into images and masks automatically (:mod:`core.workflow.bundles`),
and its ``segdash.json`` supplies the class names. A Zarr or OME-Zarr folder is copied into the
workspace, or, ``by_reference``, read where it is (:mod:`core.store.volumes`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..data.chunked import sample_slices
from ..data.io import SingletonAxisNeeded, Stack, StackOrColourNeeded, check_import_path, read_stack
from ..data.masks import default_class_names, to_labels
from ..data.omezarr import labels_manifest
from ..errors import SegDashError
from ..store.workspace import DatasetInfo, Workspace, validate_name
from .bundles import split_bundle

__all__ = [
    "ImportReport",
    "pair_masks",
    "import_dataset",
    "split_bundle",
    "ImagesLookLikeMasks",
    "TooManyClassNames",
    "import_roots",
]

_MASK_SUFFIXES = ("_mask", "_masks", "-mask", "_label", "_labels", "-label", "_gt", "_seg", "_segmentation")


@dataclass
class ImportReport:
    """Result of :func:`import_dataset`: the stored dataset and what the user should be told."""

    dataset: DatasetInfo
    notices: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        counts = self.dataset.counts()
        return {
            "dataset": self.dataset.name,
            "slices": counts["slices"],
            "labeled": counts["labeled"],
            "unlabeled": counts["unlabeled"],
            "shape": list(self.dataset.shape),
            "dtype": self.dataset.dtype,
            "classes": list(self.dataset.class_names),
            "notices": self.notices,
            "by_reference": bool(self.dataset.volume),
        }


def import_roots(ws: Workspace) -> list[Path]:
    """Folders the web page may import server paths from.

    ``$SEGDASH_IMPORT_ROOTS`` (``os.pathsep``-separated) if set, else the folder the app was started
    in and ``<workspace>/inbox/`` (created here).
    """
    env = os.environ.get("SEGDASH_IMPORT_ROOTS")
    if env:
        return [Path(p).expanduser().resolve() for p in env.split(os.pathsep) if p.strip()]
    inbox = ws.root / "inbox"
    try:
        inbox.mkdir(exist_ok=True)
    except OSError:
        pass
    return [Path.cwd().resolve(), inbox.resolve()]


def _mask_stem(stem: str) -> str:
    low = stem.lower()
    for suf in _MASK_SUFFIXES:
        if low.endswith(suf):
            return stem[: -len(suf)]
    return stem


def pair_masks(images: Stack, masks: Stack | None, *, one_file_each: bool = False) -> list[int | None]:
    """For each image slice, the index of its mask slice in ``masks`` or ``None``.

    ``one_file_each``: the images and the masks were each given as one file (not a folder or ZIP);
    they then pair slice by slice whatever their names.

    Raises:
        ValueError: slice counts of two stacks differ; a mask has no image; shapes differ.
    """
    z = images.shape[0]
    if masks is None:
        return [None] * z
    if images.shape[1:] != masks.shape[1:]:
        raise SegDashError(
            f"images ({_where(images)}) are {images.shape[1]}x{images.shape[2]} but masks "
            f"({_where(masks)}) are {masks.shape[1]}x{masks.shape[2]} (Y x X)"
        )
    one_file_each = one_file_each and len(set(images.sources)) == 1 and len(set(masks.sources)) == 1
    if images.from_single_stack or masks.from_single_stack or one_file_each:
        if images.shape[0] != masks.shape[0]:
            raise SegDashError(
                f"images ({_where(images)}) have {images.shape[0]} slices but masks "
                f"({_where(masks)}) have {masks.shape[0]}; a stack pairs slice by slice"
            )
        return list(range(z))
    index = {name: i for i, name in enumerate(images.names)}
    out: list[int | None] = [None] * z
    orphans = []
    for j, mname in enumerate(masks.names):
        assert mname is not None
        i = index.get(mname, index.get(_mask_stem(mname)))
        if i is None:
            orphans.append(masks.sources[j])
        else:
            out[i] = j
    if orphans:
        shown = ", ".join(orphans[:5]) + (f" and {len(orphans) - 5} more" if len(orphans) > 5 else "")
        raise SegDashError(f"masks without a matching image (matched by file name): {shown}")
    return out


def _where(stack: Stack) -> str:
    srcs = sorted(set(stack.sources))
    return srcs[0] if len(srcs) == 1 else f"{len(srcs)} files"


class ImagesLookLikeMasks(SegDashError):
    """The images hold only two values, as masks do: images and masks may have been swapped.

    Attributes:
        values: the two values.
    """

    def __init__(self, source: str, values: list[float]):
        self.values = values
        super().__init__(
            f"{source}: the images hold only two values ({values[0]:g} and {values[1]:g}), like a "
            "mask; were images and masks swapped? Confirm that these are the images to import "
            "them anyway"
        )


class TooManyClassNames(SegDashError):
    """More class names were given than the masks hold classes (a class without pixels cannot be trained)."""


def _two_values(data: np.ndarray) -> list[float] | None:
    """The two distinct values of ``data`` if it has exactly two, else ``None`` (stops early)."""
    seen: set[float] = set()
    for z in range(data.shape[0]):
        sl = np.asarray(data[z])
        vals = np.flatnonzero(np.bincount(sl.ravel(), minlength=1)) if sl.dtype == np.uint8 else np.unique(sl)
        seen.update(float(v) for v in vals[:3])
        if len(seen) > 2:
            return None
    return sorted(seen) if len(seen) == 2 else None


def _read_masks(masks: Any, as_stack: bool | None, image_yx: tuple[int, ...], **options: Any) -> Stack:
    """The mask stack, read as the images were (``as_stack``) or, not asked, planar planes as slices
    and an unnamed trailing axis of one the way that gives the images' Y x X (a mask saved as
    ``(Y, X, 1)`` beside ``(Y, X)`` images)."""
    if as_stack is not None:
        return read_stack(masks, channel=None, as_stack=as_stack, **options)
    try:
        return read_stack(masks, channel=None, **options)
    except SingletonAxisNeeded:
        stored = read_stack(masks, channel=None, as_stack=False, **options)
        return (
            stored if stored.shape[1:] == tuple(image_yx) else read_stack(masks, channel=None, as_stack=True, **options)
        )
    except StackOrColourNeeded:
        return read_stack(masks, channel=None, as_stack=True, **options)


def _refuse_no_numbers(stack: Stack, data: Any) -> None:
    """Refuse images that hold no number (every pixel NaN or infinite): nothing to normalise, label
    or train on. Floating-point data only, a slice at a time, stopping at the first slice with one."""
    if not np.issubdtype(np.dtype(data.dtype), np.floating):
        return
    if not any(np.isfinite(np.asarray(data[z])).any() for z in range(data.shape[0])):
        which = f"all {stack.shape[0]} slices hold" if stack.shape[0] > 1 else "the image holds"
        raise SegDashError(f"{_where(stack)}: {which} no number (every pixel is NaN or infinite); nothing was imported")


def _one_file(source: Any) -> bool:
    """``source`` is one image file (a path, an upload or a ``(name, bytes)`` pair), not a folder or ZIP."""
    if isinstance(source, (list, tuple)) and len(source) == 1 and not isinstance(source[0], (bytes, bytearray)):
        source = source[0]
    if isinstance(source, (str, Path)):
        return Path(source).is_file() and Path(source).suffix.lower() != ".zip"
    if isinstance(source, tuple) and len(source) == 2 and isinstance(source[1], (bytes, bytearray)):
        return not str(source[0]).lower().endswith(".zip")
    name = str(getattr(source, "name", ""))
    return bool(name) and hasattr(source, "read") and not name.lower().endswith(".zip")


class _Reporting(np.ndarray):
    """A view of the image stack that reports each slice taken (what the workspace writes)."""

    def __getitem__(self, index):  # noqa: D105
        out = super().__getitem__(index)
        report = getattr(self, "_report", None)
        if report is not None and isinstance(index, (int, np.integer)):
            report(int(index) + 1)
            return np.asarray(out)
        return out


def import_dataset(
    ws: Workspace,
    name: str,
    images: Any,
    masks: Any = None,
    *,
    channel: int | None = None,
    mask_threshold: float | None = None,
    class_names: Sequence[str] | None = None,
    source: str = "",
    as_stack: bool | None = None,
    remap_classes: bool = False,
    images_are_binary: bool = False,
    merge_classes: bool = False,
    unlabeled_value: float | None = None,
    roots: Sequence[str | Path] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    by_reference: bool = False,
    series: int | None = None,
) -> ImportReport:
    """Read images (and masks), pair them and store them as dataset ``name``.

    Args:
        ws: the workspace.
        name: new dataset name.
        images: anything :func:`core.data.io.read_stack` accepts; a folder or ZIP with ``images/`` and
            ``masks/`` sub-folders brings its masks along.
        masks: masks in the same forms, or ``None``.
        channel: channel to keep for multi-channel images.
        mask_threshold: binarise masks at this value (for anti-aliased or JPEG masks).
        class_names: one per class; default from the bundle manifest or ``background, foreground``.
        source: description stored with the dataset.
        as_stack: how to read a 3- or 4-plane planar TIFF, or one with an unnamed axis of one such as
            ``(5, 100, 1)`` (see :func:`core.data.io.read_stack`); masks follow the same reading
            (when not given: planar planes as slices, a trailing axis of one as the images' Y x X).
        series: which series of a TIFF of several to import (see :func:`core.data.io.read_stack`).
        remap_classes: map gapped mask values ({0, 1, 2, 7}) to classes 0..K-1.
        images_are_binary: import images that hold only two values (else :class:`ImagesLookLikeMasks`).
        merge_classes: let ``mask_threshold`` merge several mask classes into one.
        unlabeled_value: mask pixels of this value are not labeled (default: a SegDash ZIP manifest's).
        roots: paths must lie inside these folders (the web page's server-path import).
        progress: ``progress(done, total, stage)``: files read (stage ``"images"``, ``"masks"``),
            then slices written (stage ``"writing"``).
        by_reference: ``images`` is a Zarr or OME-Zarr folder that stays where it is: the dataset reads it
            in place (no copy; :mod:`core.store.volumes`); else it is copied into the workspace.

    Raises:
        ValueError: every refusal, with a message for the user (see :mod:`core.data.io`, :mod:`core.data.masks`):
            :class:`~core.data.io.ChannelChoiceNeeded`, :class:`~core.data.io.StackOrColourNeeded`,
            :class:`~core.data.io.SingletonAxisNeeded`, :class:`~core.data.io.SeriesChoiceNeeded`,
            :class:`~core.data.masks.StrayMaskValues`, :class:`~core.data.masks.GappedMaskValues`,
            :class:`~core.data.masks.ThresholdMergesClasses`, :class:`ImagesLookLikeMasks` and
            :class:`TooManyClassNames` ask a question the caller can answer with an option.
    """
    validate_name(name)
    if ws.has_dataset(name):
        raise SegDashError(f"a dataset named {name!r} exists already; choose another name or delete it first")
    if roots is not None:
        for src in (images, masks):
            if isinstance(src, (str, Path)):
                check_import_path(src, roots)
    manifest: dict[str, Any] = {}
    if masks is None:
        images, masks, manifest = split_bundle(images)
    else:
        manifest = labels_manifest(masks)  # SegDash's OME-Zarr labels: classes, labeled slices, 255

    def stage(what: str):
        return None if progress is None else (lambda done, total: progress(done, total, what))

    stack = read_stack(
        images,
        channel=channel,
        as_stack=as_stack,
        roots=roots,
        progress=stage("images"),
        reference=by_reference,
        series=series,
    )
    notices = list(stack.notices)
    looked_at = sample_slices(stack.data, 8) if by_reference else stack.data  # a volume: 8 slices, read once
    _refuse_no_numbers(stack, looked_at)
    if not images_are_binary:
        two = _two_values(looked_at)
        if two is not None:
            raise ImagesLookLikeMasks(_where(stack), two)
    mask_stack = None
    if masks is not None:
        mask_stack = _read_masks(masks, as_stack, stack.shape[1:], roots=roots, progress=stage("masks"))
    pairing = pair_masks(stack, mask_stack, one_file_each=_one_file(images) and _one_file(masks))
    if "labeled_slices" in manifest:  # the other slices of the labels image are 0 for "no mask"
        listed = set(manifest["labeled_slices"])
        pairing = [j if j in listed else None for j in pairing]
    labels_list: list[np.ndarray | None] = [None] * stack.shape[0]
    n_classes = 2
    known = len(manifest.get("class_names") or []) if not class_names else 0
    if mask_stack is not None:
        notices += mask_stack.notices
        used = sorted({j for j in pairing if j is not None})
        values = np.asarray(mask_stack.data[used]) if used else np.zeros((0, 1, 1), np.uint8)
        labels = to_labels(
            values,
            threshold=mask_threshold,
            source=_where(mask_stack),
            remap=remap_classes,
            merge=merge_classes,
            n_classes=known or None,
            unlabeled_value=manifest.get("unlabeled_value", unlabeled_value),
        )
        if labels.notice:
            notices.append(labels.notice)
        n_classes = labels.n_classes
        pos = {j: k for k, j in enumerate(used)}
        labels_list = [labels.labels[pos[j]] if j is not None else None for j in pairing]
        unlabeled = sum(1 for j in pairing if j is None)
        if unlabeled:
            notices.append(f"{unlabeled} of {len(pairing)} images have no mask: imported as unlabeled")
        if class_names and len(class_names) > n_classes:
            raise TooManyClassNames(
                f"{len(class_names)} class names were given ({', '.join(class_names)}) but the masks "
                f"({_where(mask_stack)}) hold {n_classes} classes; a class with no pixels cannot be "
                f"trained: give {n_classes} names"
            )
    names = list(class_names) if class_names else list(manifest.get("class_names") or [])
    if not names:
        names = default_class_names(n_classes)
    if len(names) < n_classes:
        raise SegDashError(f"the masks have {n_classes} classes but {len(names)} class names were given")
    data = stack.data
    if by_reference:
        notices.append(f"images read in place from {data.path} (not copied): the volume must stay there")
    elif progress is not None:
        z = stack.shape[0]
        data = stack.data.view(_Reporting)
        data._report = lambda done: progress(done, z, "writing")
    px = _pixel_size(images, manifest, notices)
    info = ws.create_dataset(
        name,
        data,
        labels_list,
        names,
        stack.names,
        source=source or _where(stack),
        notices=notices,
        by_reference=by_reference,
    )
    if px is not None:
        ws.set_pixel_size(name, *px)
    return ImportReport(info, notices)


def _pixel_size(images: Any, manifest: dict[str, Any], notices: list[str]) -> Any:
    """The pixel size the images' metadata (OME / ImageJ TIFF, OME-Zarr) or a SegDash dataset ZIP's
    manifest states, told in ``notices``."""
    from ..data.pixelsize import from_manifest, pixel_size_of

    px = from_manifest(manifest) or pixel_size_of(images)
    if px is not None:
        notices.append(f"pixel size {px.describe()} kept from the file's metadata")
    return px
