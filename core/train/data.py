"""Training data: the train/validation/test split, random patches, and validation slices as tensors.

The split (:func:`plan_split`): slices of a stack are neighbours in z and nearly identical, so a
validation slice drawn at random sits between two training slices and its score says little
about new data. For a stack the validation slices are therefore one contiguous block at the high
end of z, and training slices closer than ``gap`` slices to a validation or test slice are left out,
so no slice on one side of the split is a neighbour of one on the other. Separate files (not a
stack) keep a random split. Users may name the validation slices, and test slices that are
never trained on nor validated on (scored once, at the end of the run).

Images are kept raw in memory and normalised per patch with the run's percentile window; slices
smaller than the patch are reflect-padded; validation slices are centre-cropped to ``val_crop`` and
padded to the model's multiple. With 2.5D context each slice is a (C, Y, X) array of itself and its
neighbours (:func:`core.data.neighbours.neighbourhood`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from ..data.intensity import normalize
from ..data.neighbours import neighbourhood
from ..data.zrange import format_slices
from ..errors import SegDashError

__all__ = [
    "SPLITS",
    "Split",
    "plan_split",
    "looks_like_stack",
    "block_split",
    "split_for",
    "split_slices",
    "context_images",
    "PatchDataset",
    "patch_coords",
    "pad_to",
    "center_crop",
    "validation_tensors",
]

_EMPTY_PATCH_TRIES = 20


SPLITS = ("auto", "block", "random")
_NUMBERED = re.compile(r"^(.*?)(\d+)$")


@dataclass(frozen=True)
class Split:
    """Which labeled slices train, validate and test (indices z, sorted).

    Attributes:
        train, val, test: disjoint slice indices; ``test`` is never trained nor validated on.
        left_out: training candidates dropped because they lie within ``gap`` of a validation or
            test slice.
        mode: ``block`` (contiguous validation block), ``random``, or ``chosen`` (the user's).
        gap: the gap in slices kept between training and validation/test slices.
        notes: what the user should know about it.
    """

    train: list[int]
    val: list[int]
    test: list[int] = field(default_factory=list)
    left_out: list[int] = field(default_factory=list)
    mode: str = "random"
    gap: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "gap": self.gap,
            "train": list(self.train),
            "val": list(self.val),
            "test": list(self.test),
            "left_out": list(self.left_out),
        }

    def describe(self) -> str:
        """One line for the user, e.g. ``block split: train 0-19 (20), gap 2, validation 22-23 (2)``."""
        parts = [f"train {format_slices(self.train)} ({len(self.train)})"]
        if self.left_out:
            parts.append(f"left out {format_slices(self.left_out)} (gap {self.gap})")
        parts.append(f"validation {format_slices(self.val)} ({len(self.val)})")
        if self.test:
            parts.append(f"test {format_slices(self.test)} ({len(self.test)})")
        return f"{self.mode} split: " + ", ".join(parts)


def looks_like_stack(slice_names: Sequence[str]) -> bool:
    """Whether slices are sections of a stack (neighbours in z) rather than separate images: their
    names are a prefix with consecutive numbers (``train-00``, ``train-01`` ...; ``001.png`` ...;
    slices of one multi-page file, named ``<dataset>_<zzzz>``), or several such runs one after
    the other (``train-00`` .. ``train-29``, ``test-00`` .. ``test-29``).

    >>> looks_like_stack(["vol_0000", "vol_0001", "vol_0002"]), looks_like_stack(["cellA", "cellB"])
    (True, False)
    """
    if len(slice_names) < 2:
        return False
    parsed = [_NUMBERED.match(str(n)) for n in slice_names]
    if not all(parsed):
        return False
    runs: list[str] = []
    last = None
    for m in parsed:
        prefix, number = m.group(1), int(m.group(2))
        if runs and prefix == runs[-1]:
            if number != last + 1:
                return False
        elif prefix in runs:
            return False
        else:
            runs.append(prefix)
        last = number
    return len(runs) < len(slice_names)


def _n_val(n: int, val_fraction: float) -> int:
    return min(n - 1, max(1, int(round(n * val_fraction)))) if n >= 2 and val_fraction > 0 else 0


def block_split(zs: Sequence[int], val_fraction: float, gap: int) -> tuple[list[int], list[int], list[int]]:
    """Validation as one contiguous block at the high end of z, and a gap before it.

    Args:
        zs: labeled slice indices.
        val_fraction: fraction of them for validation (at least one when there are two or more).
        gap: training slices within ``gap`` of the block (``|z_train - z_val| <= gap``) are left out,
            unless that would leave no training slice.

    Returns:
        ``(train, val, left_out)``, sorted.

    Example:
        >>> block_split(range(10), 0.2, gap=2)
        ([0, 1, 2, 3, 4, 5], [8, 9], [6, 7])
    """
    zs = sorted(int(z) for z in zs)
    n_val = _n_val(len(zs), val_fraction)
    val = zs[len(zs) - n_val :]
    rest = zs[: len(zs) - n_val]
    train, left = _apart(rest, val, gap)
    return train, val, left


def _apart(candidates: Sequence[int], held: Sequence[int], gap: int) -> tuple[list[int], list[int]]:
    """Candidates farther than ``gap`` from every held slice, and those left out (all kept when none
    would be)."""
    if not held or gap <= 0:
        return sorted(candidates), []
    h = np.asarray(sorted(held))
    keep, left = [], []
    for z in candidates:
        i = int(np.searchsorted(h, z))
        near = min(abs(z - int(h[j])) for j in (i - 1, i) if 0 <= j < len(h))
        (left if near <= gap else keep).append(z)
    return (keep, left) if keep else (sorted(candidates), [])


def _near(zs: Sequence[int], held: Sequence[int], gap: int) -> bool:
    """Some slice of ``zs`` lies within ``gap`` of a held slice."""
    return any(abs(a - b) <= gap for a in zs for b in held)


def plan_split(
    zs: Sequence[int],
    slice_names: Sequence[str],
    *,
    mode: str = "auto",
    val_fraction: float = 0.1,
    gap: int = 2,
    seed: int = 0,
    val_slices: Sequence[int] | None = None,
    test_slices: Sequence[int] = (),
) -> Split:
    """The run's split of the labeled slices ``zs`` (see the module docstring).

    Args:
        zs: labeled slice indices.
        slice_names: every slice's name (decides whether the dataset is a stack for ``auto``).
        mode: ``auto`` (``block`` for a stack, ``random`` for separate files), ``block`` or ``random``.
        val_fraction: fraction of the labeled, non-test slices for validation.
        gap: for stacks, training slices within ``gap`` slices of a validation or test slice are
            left out (``0``: none).
        seed: seed of the random split.
        val_slices: the user's validation slices (then ``mode`` is ``chosen``); must be labeled.
        test_slices: slices kept for testing; labeled ones are scored at the end of the run.

    Example:
        >>> s = plan_split(range(30), [f"s{i:02d}" for i in range(30)], val_fraction=0.1, gap=2)
        >>> s.train[-1], s.val
        (24, [27, 28, 29])
    """
    if mode not in SPLITS:
        raise SegDashError(f"split must be one of {', '.join(SPLITS)}, got {mode!r}")
    labeled = sorted(int(z) for z in zs)
    known = set(labeled)
    n = len(slice_names)
    for what, chosen in (("validation", val_slices or ()), ("test", test_slices)):
        bad = [int(z) for z in chosen if not 0 <= int(z) < n]
        if bad:
            raise SegDashError(f"{what} slice {bad[0]} out of range 0..{n - 1}")
    test = sorted({int(z) for z in test_slices})
    stack = looks_like_stack(slice_names)
    mode = ("block" if stack else "random") if mode == "auto" else mode
    gap = int(gap) if stack or mode == "block" else 0
    notes: list[str] = []
    pool = [z for z in labeled if z not in set(test)]
    if not pool:
        raise SegDashError("every labeled slice is a test slice: leave some for training")
    if val_slices:
        val = sorted({int(z) for z in val_slices})
        unlabeled = [z for z in val if z not in known]
        if unlabeled:
            raise SegDashError(f"validation slice {unlabeled[0]} has no mask: label it or choose another")
        if set(val) & set(test):
            raise SegDashError(f"slice {sorted(set(val) & set(test))[0]} is both a validation and a test slice")
        rest = [z for z in pool if z not in set(val)]
        if not rest:
            raise SegDashError("every labeled slice is a validation or test slice: leave some for training")
        train, left = _apart(rest, val + test, gap)
        mode = "chosen"
    elif mode == "block":
        n_val = _n_val(len(pool), val_fraction)
        val = pool[len(pool) - n_val :]
        train, left = _apart(pool[: len(pool) - n_val], val + test, gap)
    else:
        train, val = split_slices(pool, val_fraction, seed)
        train, left = _apart(train, test, gap)
    if gap and _near(train, val + test, gap):
        notes.append(f"too few slices for a gap of {gap}: training slices neighbour validation or test slices")
    if not val:
        val = list(train)
        notes.append(
            "only one labeled slice: validation uses the training slice"
            if len(pool) == 1
            else "no slice held out for validation: validation uses the training slices"
        )
    if test and not [z for z in test if z in known]:
        notes.append("no test slice has a mask: there is nothing to score them against")
    return Split(train, val, [z for z in test if z in known], left, mode, gap, notes)


def split_for(zs: Sequence[int], slice_names: Sequence[str], cfg: Any, keep_val: Sequence[int] | None = None) -> Split:
    """:func:`plan_split` with a :class:`~core.train.config.TrainConfig`'s settings (``keep_val``: a
    resumed run's validation slices, which win over the config's choice). The gap is at least
    ``cfg.context``, so no training input reaches into a validation or test slice."""
    return plan_split(
        zs,
        slice_names,
        mode=cfg.val_split,
        val_fraction=cfg.val_fraction,
        gap=max(cfg.val_gap, cfg.context),
        seed=cfg.seed,
        val_slices=keep_val or cfg.val_slices or None,
        test_slices=cfg.test_slices,
    )


def split_slices(zs: Sequence[int], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Split slice indices into training and validation sets at random, reproducibly.

    Args:
        zs: slice indices (labeled slices).
        val_fraction: fraction for validation; rounded, at least 1 when ``len(zs) >= 2`` (none when
            0), and at least one slice always stays for training.
        seed: random seed.

    Returns:
        ``(train_zs, val_zs)``, each sorted, disjoint, together ``zs``.

    Example:
        >>> split_slices(range(10), 0.2, seed=0)
        ([0, 1, 2, 3, 5, 7, 8, 9], [4, 6])
    """
    zs = [int(z) for z in zs]
    if len(set(zs)) != len(zs):
        raise SegDashError("slice indices must be unique")
    if len(zs) < 2 or val_fraction <= 0:
        return sorted(zs), []
    n_val = min(len(zs) - 1, max(1, int(round(len(zs) * val_fraction))))
    perm = np.random.default_rng(seed).permutation(len(zs))
    val = sorted(zs[i] for i in perm[:n_val])
    train = sorted(zs[i] for i in perm[n_val:])
    return train, val


def pad_to(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """Reflect-pad a (Y, X) or (C, Y, X) array at the bottom/right to at least (h, w)."""
    ph, pw = max(0, h - a.shape[-2]), max(0, w - a.shape[-1])
    if not ph and not pw:
        return a
    mode = "reflect" if min(a.shape[-2:]) > 1 else "edge"
    return np.pad(a, ((0, 0),) * (a.ndim - 2) + ((0, ph), (0, pw)), mode=mode)


def context_images(stack: np.ndarray, zs: Sequence[int], context: int) -> list[np.ndarray]:
    """Slices ``zs`` of a (Z, Y, X) stack, in memory: (Y, X) each, or with ``context`` > 0 the
    (2 * context + 1, Y, X) neighbourhood of each (z - context .. z + context, mirrored at the ends;
    :func:`core.data.neighbours.neighbourhood`)."""
    if context <= 0:
        return [np.array(stack[z]) for z in zs]
    return [neighbourhood(stack, z, context) for z in zs]


class PatchDataset(torch.utils.data.Dataset):
    """Patches at precomputed positions; images normalised on the fly (raw slices kept in memory)."""

    def __init__(
        self,
        images: list[np.ndarray],
        masks: list[np.ndarray],
        coords: np.ndarray,
        patch: int,
        window: tuple[float, float],
    ):
        self.images, self.masks, self.coords, self.patch, self.window = images, masks, coords, patch, window

    def __len__(self) -> int:
        return len(self.coords)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        s, y, x = (int(v) for v in self.coords[i])
        p = self.patch
        img = normalize(self.images[s][..., y : y + p, x : x + p], self.window)
        msk = self.masks[s][y : y + p, x : x + p].astype(np.int64)
        return torch.from_numpy(img if img.ndim == 3 else img[None]), torch.from_numpy(msk)


def patch_coords(masks: list[np.ndarray], patch: int, n: int, rng: np.random.Generator, skip_empty: bool) -> np.ndarray:
    """(n, 3) rows of (slice, y, x): slices in proportion to their area, positions uniform.

    With ``skip_empty`` a patch without foreground is redrawn; after :data:`_EMPTY_PATCH_TRIES`
    misses (sparse foreground) the patch is placed around a random foreground pixel instead, so
    every patch has foreground whenever the slices have any.
    """
    areas = np.array([m.size for m in masks], dtype=np.float64)
    prob = areas / areas.sum()
    fg_cache: dict[int, np.ndarray] = {}
    fg_slices = [i for i, m in enumerate(masks) if m.any()] if skip_empty else []
    out = np.zeros((n, 3), np.int64)
    for i in range(n):
        for _ in range(_EMPTY_PATCH_TRIES if skip_empty else 1):
            s = int(rng.choice(len(masks), p=prob))
            h, w = masks[s].shape
            y, x = int(rng.integers(0, h - patch + 1)), int(rng.integers(0, w - patch + 1))
            if not skip_empty or masks[s][y : y + patch, x : x + patch].any():
                break
        else:
            if fg_slices:
                s = int(fg_slices[rng.integers(len(fg_slices))])
                if s not in fg_cache:
                    fg_cache[s] = np.flatnonzero(masks[s])
                h, w = masks[s].shape
                py, px = divmod(int(fg_cache[s][rng.integers(len(fg_cache[s]))]), w)
                y = int(np.clip(py - rng.integers(0, patch), 0, h - patch))
                x = int(np.clip(px - rng.integers(0, patch), 0, w - patch))
        out[i] = (s, y, x)
    return out


def center_crop(a: np.ndarray, size: int) -> np.ndarray:
    """The centre ``size`` x ``size`` of a (Y, X) or (C, Y, X) array (``size`` 0: all of it)."""
    if size <= 0:
        return a
    h, w = a.shape[-2:]
    y0, x0 = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return a[..., y0 : y0 + size, x0 : x0 + size]


def validation_tensors(
    stack: np.ndarray, masks: list[np.ndarray], window: tuple[float, float], mult: int, val_crop: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(padded image (1, C, H', W'), mask (1, H, W)) per validation slice, centre-cropped.

    Args:
        stack: the slices (one per mask, in the masks' order), (Y, X) or (C, Y, X) each.
        masks: their masks (class indices).
        window: normalisation window.
        mult: the model's size multiple (:func:`~core.nn.model.required_multiple`).
        val_crop: crop side (0 = whole slices).
    """
    items = []
    for img, m in zip(stack, masks):
        img = normalize(center_crop(np.asarray(img), val_crop), window)
        img = img if img.ndim == 3 else img[None]
        m = center_crop(m, val_crop)
        h, w = img.shape[-2:]
        img = pad_to(img, -(-h // mult) * mult, -(-w // mult) * mult)
        items.append((torch.from_numpy(np.ascontiguousarray(img))[None], torch.from_numpy(m.astype(np.int64))[None]))
    return items
