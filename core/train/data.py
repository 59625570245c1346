"""Training data: the train/validation split, random patches, and validation slices as tensors.

Images are kept raw in memory and normalised per patch with the run's percentile window; slices
smaller than the patch are reflect-padded; validation slices are centre-cropped to ``val_crop`` and
padded to the model's multiple.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..data.intensity import normalize
from ..errors import SegDashError

__all__ = ["split_slices", "PatchDataset", "patch_coords", "pad_to", "center_crop", "validation_tensors"]

_EMPTY_PATCH_TRIES = 20


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
    """Reflect-pad a 2-D array at the bottom/right to at least (h, w)."""
    ph, pw = max(0, h - a.shape[0]), max(0, w - a.shape[1])
    if not ph and not pw:
        return a
    mode = "reflect" if min(a.shape) > 1 else "edge"
    return np.pad(a, ((0, ph), (0, pw)), mode=mode)


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
        img = normalize(self.images[s][y : y + p, x : x + p], self.window)
        msk = self.masks[s][y : y + p, x : x + p].astype(np.int64)
        return torch.from_numpy(img)[None], torch.from_numpy(msk)


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
    if size <= 0:
        return a
    h, w = a.shape
    y0, x0 = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return a[y0 : y0 + size, x0 : x0 + size]


def validation_tensors(
    stack: np.ndarray, masks: list[np.ndarray], window: tuple[float, float], mult: int, val_crop: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(padded image (1, 1, H', W'), mask (1, H, W)) per validation slice, centre-cropped.

    Args:
        stack: the slices (one per mask, in the masks' order).
        masks: their masks (class indices).
        window: normalisation window.
        mult: the model's size multiple (:func:`~core.nn.model.required_multiple`).
        val_crop: crop side (0 = whole slices).
    """
    items = []
    for img, m in zip(stack, masks):
        img = normalize(center_crop(np.asarray(img), val_crop), window)
        m = center_crop(m, val_crop)
        h, w = img.shape
        img = pad_to(img, -(-h // mult) * mult, -(-w // mult) * mult)
        items.append(
            (torch.from_numpy(np.ascontiguousarray(img))[None, None], torch.from_numpy(m.astype(np.int64))[None])
        )
    return items
