"""Small synthetic images shared by tests: bright discs on noise, with their masks."""

from __future__ import annotations

import numpy as np


def discs(rng: np.random.Generator, h: int, w: int, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A (h, w) uint8 image of ``n`` (default 2-5) bright discs on a noisy background, and its 0/1 mask."""
    yy, xx = np.mgrid[:h, :w]
    mask = np.zeros((h, w), np.uint8)
    for _ in range(n if n is not None else int(rng.integers(2, 6))):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(5, 14)
        mask[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 1
    img = 60 + 120 * mask + rng.normal(0, 20, (h, w))
    return np.clip(img, 0, 255).astype(np.uint8), mask
