"""Prediction settings (:class:`PredictConfig`) and what a prediction wrote (:class:`PredictionResult`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import SegDashError

__all__ = ["PredictConfig", "PredictionResult", "ProgressFn", "checkpoint_facts"]

#: ``progress(done, total, eta_seconds)`` after each slice.
ProgressFn = Callable[[int, int, "float | None"], None]


@dataclass(frozen=True)
class PredictConfig:
    """How to predict.

    Args:
        tile: tile side in pixels, used as given (rounded to the model's input multiple: 32 for
            smp encoders, 16 for the classic U-Net). ``None`` (default): tiles of at most
            :func:`~core.predict.inferer.default_tile` pixels (the training patch size, at least 1024), sized per slice
            so that the fewest tiles cover it with at least ``overlap`` between neighbours: a
            512 x 512 or 768 x 1024 slice is one tile, a 2048 x 2048 slice 3 x 3 tiles of 832.
            A fully convolutional U-Net predicts larger tiles than it was trained on.
        overlap: fraction of a tile shared with its neighbour, in [0, 1); raised slightly where
            needed so tiles start on the network's pooling grid. With a fixed ``tile``, 0.25 costs
            1.8x the pixels of no overlap and 0.5 costs 4x; with spread tiles (``tile=None``) it is
            the least overlap, and the cost is what covering the slice needs.
        batch_size: tiles per forward pass (on CPU lowered for tiles above 256 x 256 so that a
            batch holds at most 4 x 256 x 256 pixels, which bounds memory at no cost in speed).
        tta: average over four flips (identity, left-right, up-down, both): 4x the time.
        dihedral: with ``tta``, average over the 8 dihedral transforms instead (the four flips
            and their transposes, i.e. also the 90-degree rotations): 8x the time.
        threshold: binary models: a pixel is foreground where P(class 1) > ``threshold``;
            ``None`` (default): the checkpoint's threshold, tuned on the run's validation slices
            (0.5 for checkpoints without one). Ignored for more than two classes (arg-max with the
            checkpoint's class weights).
        cleanup: apply the checkpoint's cleanup (small objects removed, small holes filled,
            when its run chose one on validation); ``False``: none.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...; ``None``: :func:`core.nn.device.select_device`'s
            choice (CUDA, else MPS, else CPU).
    """

    tile: int | None = None
    overlap: float = 0.25
    batch_size: int = 4
    tta: bool = False
    threshold: float | None = None
    device: str | None = None
    dihedral: bool = False
    cleanup: bool = True

    def __post_init__(self) -> None:
        if self.tile is not None and int(self.tile) < 1:
            raise SegDashError(f"tile must be a positive number of pixels, got {self.tile}")
        if not 0.0 <= float(self.overlap) < 1.0:
            raise SegDashError(f"overlap must be in [0, 1), got {self.overlap}")
        if int(self.batch_size) < 1:
            raise SegDashError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.threshold is not None and not 0.0 <= float(self.threshold) <= 1.0:
            raise SegDashError(f"threshold must be in [0, 1], got {self.threshold}")


@dataclass(frozen=True)
class PredictionResult:
    """What :func:`~core.predict.stack.predict_stack` / :func:`~core.predict.dataset.predict_dataset` wrote.

    Attributes:
        masks_path: the masks TIFF; ``None`` when cancelled before the first slice (nothing written).
        prob_path: the probability TIFF, or ``None`` when not asked for (or nothing written).
        n_done: slices predicted and written (slices ``0 .. n_done - 1``).
        n_total: slices in the stack.
        cancelled: the cancel event stopped the run; the files hold the ``n_done`` finished slices.
        uncertainty: per predicted slice, :func:`~core.predict.probabilities.slice_uncertainty`.
        seconds: wall time.
        device: where the network ran.
        warnings: what does not fit between the checkpoint and the data
            (:func:`core.nn.fit.fit_warnings`); filled by :func:`~core.predict.dataset.predict_dataset`.
    """

    masks_path: Path | None
    prob_path: Path | None
    n_done: int
    n_total: int
    cancelled: bool
    uncertainty: list[float]
    seconds: float
    device: str = "cpu"
    warnings: tuple[str, ...] = ()


def checkpoint_facts(ckpt: Any) -> dict[str, Any]:
    """What a prediction's JSON says of its checkpoint (:class:`~core.nn.checkpoint.Checkpoint`): class
    names, intensity window, the dataset it was trained on, its run."""
    return {
        "class_names": list(ckpt.class_names),
        "norm_window": list(ckpt.norm_window),
        "trained_on": ckpt.extra.get("dataset"),
        "run_id": ckpt.run_id,
    }
