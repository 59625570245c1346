"""Small synthetic data shared by tests: bright discs on noise with their masks, and a tiny checkpoint."""

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


def disc_stack(rng: np.random.Generator, z: int, h: int, w: int, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``z`` slices of :func:`discs`: a (Z, h, w) uint8 stack and its 0/1 masks."""
    pairs = [discs(rng, h, w, n) for _ in range(z)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


#: a classic U-Net of width 4 trained on 64-px patches: a run of the discs takes seconds
TINY_TRAIN = {
    "model": {"arch": "classic", "classic_width": 4},
    "patch_size": 64,
    "batch_size": 8,
    "steps_per_epoch": 4,
    "lr": 1e-2,
    "val_fraction": 0.25,
}


def tiny_checkpoint(
    path,
    class_names=("bg", "fg"),
    *,
    width: int = 2,
    patch_size: int = 32,
    epoch: int = 0,
    norm_window: tuple[float, float] = (0.0, 255.0),
    seed: int | None = None,
    model=None,
    **kwargs,
):
    """A classic U-Net of ``width`` for ``class_names``, untrained unless ``model`` is given, saved as a
    SegDash checkpoint at ``path`` (``torch.manual_seed(seed)`` first, when given); returns its path.
    ``kwargs`` (``run_id``, ``extra``, ``metrics``) go to :func:`core.nn.checkpoint.save_checkpoint`."""
    import torch

    from core.nn.checkpoint import save_checkpoint
    from core.nn.model import ModelConfig, build_model

    cfg = ModelConfig(arch="classic", classic_width=width, n_classes=len(class_names))
    if seed is not None:
        torch.manual_seed(seed)
    kwargs.setdefault("metrics", {})
    return save_checkpoint(
        path,
        model if model is not None else build_model(cfg),
        cfg,
        class_names=list(class_names),
        norm_window=norm_window,
        patch_size=patch_size,
        epoch=epoch,
        **kwargs,
    )


def add_tiny_run(ws, run_id: str, dataset: str, class_names=("background", "cell"), *, best_dice=0.5, **kwargs):
    """A finished run ``run_id`` of ``dataset`` in workspace ``ws`` whose ``best.pt`` is
    :func:`tiny_checkpoint` (width 4, epoch 1; ``kwargs`` go to it); returns the checkpoint's path."""
    kwargs = {"width": 4, "epoch": 1, **kwargs}
    path = tiny_checkpoint(ws.run_dir(run_id) / "best.pt", class_names, run_id=run_id, **kwargs)
    model = {"arch": "classic", "classic_width": kwargs["width"], "n_classes": len(class_names)}
    ws.catalog.create_run(run_id, dataset, {"model": model}, state="done")
    ws.catalog.update_run(run_id, best_checkpoint=str(path), best_dice=best_dice, device="cpu")
    return path
