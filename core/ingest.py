"""Importing users' data into the workspace: read images and masks, pair them, store a dataset.

Pairing rules (:func:`pair_masks`):
- an image stack from one multi-slice file and a mask stack from one file pair slice i with slice i;
  their slice counts must match;
- separate files pair by file stem; a mask stem may carry a suffix such as ``_mask`` or ``_label``;
- images without a mask are unlabeled; a mask without an image, or of another shape, is refused
  with the names and both shapes in the message.

A ZIP or folder with ``images/`` and ``masks/`` (or ``labels/``) sub-folders, as SegDash's own
dataset export writes, is split into images and masks automatically, and its ``segdash.json``
supplies the class names.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Sequence

import numpy as np

from .io import Stack, read_stack
from .masks import default_class_names, to_labels
from .workspace import DatasetInfo, Workspace, validate_name

__all__ = ["ImportReport", "pair_masks", "import_dataset", "split_bundle"]

_MASK_SUFFIXES = ("_mask", "_masks", "-mask", "_label", "_labels", "-label", "_gt", "_seg", "_segmentation")
_MASK_DIRS = ("masks", "mask", "labels", "label", "gt")
_IMAGE_DIRS = ("images", "image", "imgs", "raw")
MANIFEST = "segdash.json"


@dataclass
class ImportReport:
    """Result of :func:`import_dataset`: the stored dataset and what the user should be told."""

    dataset: DatasetInfo
    notices: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        counts = self.dataset.counts()
        return {"dataset": self.dataset.name, "slices": counts["slices"], "labeled": counts["labeled"],
                "unlabeled": counts["unlabeled"], "shape": list(self.dataset.shape), "dtype": self.dataset.dtype,
                "classes": list(self.dataset.class_names), "notices": self.notices}


def _mask_stem(stem: str) -> str:
    low = stem.lower()
    for suf in _MASK_SUFFIXES:
        if low.endswith(suf):
            return stem[: -len(suf)]
    return stem


def pair_masks(images: Stack, masks: Stack | None) -> list[int | None]:
    """For each image slice, the index of its mask slice in ``masks`` or ``None``.

    Raises:
        ValueError: slice counts of two stacks differ; a mask has no image; shapes differ.
    """
    z = images.shape[0]
    if masks is None:
        return [None] * z
    if images.shape[1:] != masks.shape[1:]:
        raise ValueError(f"images ({_where(images)}) are {images.shape[1]}x{images.shape[2]} but masks "
                         f"({_where(masks)}) are {masks.shape[1]}x{masks.shape[2]} (Y x X)")
    if images.from_single_stack or masks.from_single_stack:
        if images.shape[0] != masks.shape[0]:
            raise ValueError(f"images ({_where(images)}) have {images.shape[0]} slices but masks "
                             f"({_where(masks)}) have {masks.shape[0]}; a stack pairs slice by slice")
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
        raise ValueError(f"masks without a matching image (matched by file name): {shown}")
    return out


def _where(stack: Stack) -> str:
    srcs = sorted(set(stack.sources))
    return srcs[0] if len(srcs) == 1 else f"{len(srcs)} files"


def split_bundle(source: Any) -> tuple[Any, Any | None, dict[str, Any]]:
    """Split a folder or ZIP holding ``images/`` and ``masks/`` sub-folders.

    Returns ``(images_source, masks_source_or_None, manifest)``; a source without that layout is
    returned unchanged with ``(source, None, {})``.
    """
    if isinstance(source, (str, Path)) and Path(source).is_dir():
        root = Path(source)
        img = next((root / d for d in _IMAGE_DIRS if (root / d).is_dir()), None)
        msk = next((root / d for d in _MASK_DIRS if (root / d).is_dir()), None)
        manifest = json.loads((root / MANIFEST).read_text()) if (root / MANIFEST).is_file() else {}
        if img is not None:
            return img, msk, manifest
        return source, None, {}
    data, name = _zip_bytes(source)
    if data is None:
        return source, None, {}
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{name}: not a readable ZIP file ({exc})") from None
    with zf:
        tops: dict[str, list[str]] = {}
        manifest: dict[str, Any] = {}
        for m in zf.infolist():
            parts = PurePosixPath(m.filename).parts
            if len(parts) == 1 and parts[0] == MANIFEST and m.file_size < 1_000_000:
                try:
                    manifest = json.loads(zf.read(m))
                except ValueError:
                    manifest = {}
            if len(parts) >= 2 and not m.is_dir():
                tops.setdefault(parts[0].lower(), []).append(m.filename)
        img_dir = next((d for d in _IMAGE_DIRS if d in tops), None)
        if img_dir is None:
            return source, None, {}
        msk_dir = next((d for d in _MASK_DIRS if d in tops), None)
    return _sub_zip(name, data, img_dir), (_sub_zip(name, data, msk_dir) if msk_dir else None), manifest


def _zip_bytes(source: Any) -> tuple[bytes | None, str]:
    if isinstance(source, (str, Path)):
        p = Path(source)
        return (p.read_bytes(), p.name) if p.suffix.lower() == ".zip" and p.is_file() else (None, "")
    if isinstance(source, tuple) and len(source) == 2 and str(source[0]).lower().endswith(".zip"):
        return bytes(source[1]), str(source[0])
    name = str(getattr(source, "name", ""))
    if name.lower().endswith(".zip") and hasattr(source, "read"):
        data = source.getvalue() if hasattr(source, "getvalue") else source.read()
        return data, Path(name).name
    return None, ""


def _sub_zip(name: str, data: bytes, folder: str) -> tuple[str, bytes]:
    """A ZIP holding only the members under ``folder/`` (names kept; safety checks run on read)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for m in src.infolist():
            parts = PurePosixPath(m.filename).parts
            if len(parts) >= 2 and parts[0].lower() == folder and not m.is_dir():
                dst.writestr(m.filename, src.read(m))
    return f"{Path(name).stem}/{folder}.zip", out.getvalue()


def import_dataset(ws: Workspace, name: str, images: Any, masks: Any = None, *, channel: int | None = None,
                   mask_threshold: float | None = None, class_names: Sequence[str] | None = None,
                   source: str = "") -> ImportReport:
    """Read images (and masks), pair them and store them as dataset ``name``.

    Args:
        ws: the workspace.
        name: new dataset name.
        images: anything :func:`core.io.read_stack` accepts; a folder or ZIP with ``images/`` and
            ``masks/`` sub-folders brings its masks along.
        masks: masks in the same forms, or ``None``.
        channel: channel to keep for multi-channel images.
        mask_threshold: binarise masks at this value (for anti-aliased or JPEG masks).
        class_names: one per class; default from the bundle manifest or ``background, foreground``.
        source: description stored with the dataset.

    Raises:
        ValueError: every refusal, with a message for the user (see :mod:`core.io`, :mod:`core.masks`).
    """
    validate_name(name)
    if ws.has_dataset(name):
        raise ValueError(f"a dataset named {name!r} exists already; choose another name or delete it first")
    manifest: dict[str, Any] = {}
    if masks is None:
        images, masks, manifest = split_bundle(images)
    stack = read_stack(images, channel=channel)
    notices = list(stack.notices)
    mask_stack = read_stack(masks, channel=None) if masks is not None else None
    pairing = pair_masks(stack, mask_stack)
    labels_list: list[np.ndarray | None] = [None] * stack.shape[0]
    n_classes = 2
    if mask_stack is not None:
        notices += mask_stack.notices
        used = sorted({j for j in pairing if j is not None})
        values = np.asarray(mask_stack.data[used]) if used else np.zeros((0, 1, 1), np.uint8)
        labels = to_labels(values, threshold=mask_threshold, source=_where(mask_stack))
        if labels.notice:
            notices.append(labels.notice)
        n_classes = labels.n_classes
        pos = {j: k for k, j in enumerate(used)}
        labels_list = [labels.labels[pos[j]] if j is not None else None for j in pairing]
        unlabeled = sum(1 for j in pairing if j is None)
        if unlabeled:
            notices.append(f"{unlabeled} of {len(pairing)} images have no mask: imported as unlabeled")
    names = list(class_names) if class_names else list(manifest.get("class_names") or [])
    if not names:
        names = default_class_names(n_classes)
    if len(names) < n_classes:
        raise ValueError(f"the masks have {n_classes} classes but {len(names)} class names were given")
    info = ws.create_dataset(name, stack.data, labels_list, names, stack.names,
                             source=source or _where(stack), notices=notices)
    return ImportReport(info, notices)
