"""The network on a slice: tiled, Gaussian-blended, optionally flip-averaged inference.

How a slice is predicted (:func:`predict_slice`):

1. Normalised exactly as in training: :func:`core.data.intensity.normalize` with the checkpoint's
   ``norm_window``.
2. Reflect-padded at the bottom and right to a multiple of the model's input multiple
   (:func:`core.nn.model.required_multiple`: 32 for smp encoders, 16 for the classic U-Net); the
   output is cropped back.
3. Cut into tiles of ``tile`` pixels (default: the training patch size rounded to that multiple;
   a side smaller than a tile becomes one tile that side) overlapping by ``overlap`` (rounded up so
   tiles start at multiples of the input multiple, on the whole slice's pooling grid), run in batches
   of ``batch_size`` tiles, and the tiles' class probabilities blended with a Gaussian weight
   (``monai.inferers.sliding_window_inference(..., mode="gaussian")``), so tile borders, where
   the network sees least context, count least and leave no seams. A slice that fits in one tile
   is one forward pass of the whole slice.
4. On CUDA the forward runs under ``torch.autocast`` (bfloat16 where supported, else float16) with
   channels-last tensors; everywhere under ``torch.inference_mode``. Blending is float32.
5. With ``tta=True`` each tile is also predicted flipped left-right, up-down and both, and the four
   probability maps are averaged: four forward passes, so 4x the time of a plain prediction. With
   ``dihedral=True`` too, the 8 dihedral transforms (the four flips and their transposes) are
   averaged: 8x the time. Each transform is undone on the output before averaging, so the result
   is equivariant: predicting a transformed slice gives the transformed prediction.
6. A model trained with 2.5D context (``ckpt.context`` = c) takes the slice with its c neighbours each
   side as channels: :func:`slice_input` reads them from the stack (mirrored at its ends), as
   training did.

Labels: :meth:`_Runner.decision` is the checkpoint's :class:`~core.nn.decision.Decision` (tuned on
the run's validation slices) unless the config sets a threshold or turns cleanup off.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from monai.inferers import sliding_window_inference

from ..data.intensity import normalize
from ..data.neighbours import neighbourhood
from ..errors import SegDashError
from ..nn.checkpoint import Checkpoint
from ..nn.decision import Decision
from ..nn.device import amp_dtype_for, resolve_device, use_cpu_threads, uses_channels_last
from ..nn.model import probabilities, required_multiple
from .config import PredictConfig

__all__ = ["predict_slice", "default_tile", "slice_input", "decision_for", "DIHEDRAL", "spread_tiles"]

#: The 8 dihedral transforms of a (…, Y, X) tensor as ``(transpose, flip dims)``: applied as
#: transpose then flip, undone as flip then transpose.
DIHEDRAL = tuple((t, d) for t in (False, True) for d in ((), (-1,), (-2,), (-2, -1)))

#: On CPU a forward pass sees at most this many pixels (4 tiles of 256 x 256): activations of an smp
#: ResNet-18 U-Net then stay near 300 MB. CPU convolutions are parallel within a tile, so bigger
#: batches gain no speed there; on CUDA ``batch_size`` is used as given.
_CPU_BATCH_PIXELS = 4 * 256 * 256
# Smallest default tile side. A slice up to 1024 x 1024 (ISBI, EPFL, most MRI) is then predicted in
# one tile, as fast as the bare forward (overlapping tiles cost 1.4-1.9x on 768 x 1024); bigger
# slices are spread over the fewest tiles. Peak memory of one 1024-px tile on the CPU: about 0.3 GB
# for the default network, 1.5 GB for the paper's width-64 U-Net.
_MIN_AUTO_TILE = {"cpu": 1024, "cuda": 1024}


def default_tile(ckpt: Checkpoint, tile: int | None = None, device: str | torch.device | None = None) -> int:
    """Largest tile side: ``tile`` if given, else the checkpoint's patch size but at least 1024
    pixels; rounded to the model's input multiple.

    A model trained on 200-pixel patches with an smp encoder (multiple 32) and ``tile=200``
    predicts 192-pixel tiles.
    """
    m = required_multiple(ckpt.model_config)
    if tile is None:
        ps = ckpt.patch_size
        tile = int(min(ps)) if isinstance(ps, (tuple, list)) else int(ps or 256)
        kind = torch.device(device).type if device is not None else "cpu"
        tile = max(tile, _MIN_AUTO_TILE.get(kind, 512))
    return max(m, int(round(int(tile) / m)) * m)


def spread_tiles(length: int, max_tile: int, overlap: float, multiple: int) -> tuple[int, float]:
    """``(tile, overlap fraction)`` along one axis: the fewest tiles of at most ``max_tile`` that
    cover ``length`` (a multiple of ``multiple``) with at least ``overlap`` shared between
    neighbours, each tile starting on the pooling grid.

    >>> spread_tiles(512, 512, 0.25, 32)
    (512, 0.0)
    >>> spread_tiles(1024, 512, 0.25, 32)[0]
    416
    """
    if length <= max_tile:
        return length, 0.0
    n = 2
    while True:
        tile = -(-math.ceil(length / (n - (n - 1) * overlap)) // multiple) * multiple
        if tile <= max_tile:
            break
        n += 1
    step = -(-math.ceil((length - tile) / (n - 1)) // multiple) * multiple  # n tiles reach the end
    return tile, 1.0 - (step + 0.5) / tile  # + 0.5: MONAI's int() then lands on ``step`` exactly


def _aligned_overlap(roi: int, overlap: float, multiple: int) -> float:
    """The overlap, raised a little so that tiles start at multiples of ``multiple``.

    MONAI steps ``int(roi * (1 - overlap))`` pixels between tiles. A U-Net is shift-equivariant only
    by multiples of its input multiple (its pooling grid), so a step that is one keeps every tile on
    the whole slice's pooling grid, and tiles differ from the whole-slice forward only by the context
    they lack. (The last tile, flush with the padded edge, is on the grid already.)
    """
    step = max(1, int(roi * (1.0 - overlap)) // multiple) * multiple
    if step >= roi:
        return 0.0
    return 1.0 - (step + 0.5) / roi  # + 0.5: MONAI's int() then lands on ``step`` exactly


class _Runner:
    """The network on its device, ready to turn normalised (Y, X) slices into (K, Y, X) probabilities."""

    def __init__(self, ckpt: Checkpoint, cfg: PredictConfig):
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        if self.device.type == "cpu":
            use_cpu_threads()  # on the thread that predicts (Streamlit's script thread): see core.nn.device
        self.n_classes = int(ckpt.model_config.n_classes)
        self.in_channels = int(getattr(ckpt.model_config, "in_channels", 1))
        self.context = int(getattr(ckpt, "context", 0) or 0)
        self.decision = decision_for(ckpt, cfg)
        self.window = tuple(float(v) for v in ckpt.norm_window)
        self.multiple = required_multiple(ckpt.model_config)
        self.tile = default_tile(ckpt, cfg.tile, self.device)
        self.spread = cfg.tile is None
        self.cuda = self.device.type == "cuda"
        self.model = ckpt.model.to(self.device).eval()
        self.channels_last = uses_channels_last(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if self.cuda:  # prediction on a CPU stays float32
            self.amp_dtype = amp_dtype_for(self.device, True)

    def batch_size(self, roi: tuple[int, int]) -> int:
        """Tiles per forward: ``cfg.batch_size``, lowered on CPU to at most :data:`_CPU_BATCH_PIXELS`
        pixels (at least one tile), where a bigger batch costs memory and gains no speed."""
        if self.cuda:
            return int(self.cfg.batch_size)
        return max(1, min(int(self.cfg.batch_size), _CPU_BATCH_PIXELS // (roi[0] * roi[1])))

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) tile batch -> (N, K, h, w) float32 probabilities."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.cuda:
            with torch.autocast("cuda", dtype=self.amp_dtype):
                logits = self.model(x)
        else:
            logits = self.model(x)
        return probabilities(logits.float(), self.n_classes)

    def _predictor(self, x: torch.Tensor) -> torch.Tensor:
        if not self.cfg.tta:
            return self._forward(x)
        transforms = DIHEDRAL if self.cfg.dihedral else DIHEDRAL[:4]
        acc = self._forward(x)
        for transpose, dims in transforms[1:]:
            t = x.transpose(-2, -1) if transpose else x
            y = self._forward(torch.flip(t, dims) if dims else t)
            y = torch.flip(y, dims) if dims else y
            acc += y.transpose(-2, -1) if transpose else y
        return acc / len(transforms)

    def check_image(self, image: np.ndarray) -> np.ndarray:
        image = np.asarray(image)
        if self.in_channels == 1:
            if image.ndim != 2:
                raise SegDashError(f"expected a (Y, X) slice, got shape {image.shape}")
        elif image.ndim != 3 or image.shape[0] != self.in_channels:
            raise SegDashError(
                f"the model takes {self.in_channels} channels: expected ({self.in_channels}, Y, X), "
                f"got shape {image.shape}"
            )
        if min(image.shape[-2:]) < 1:
            raise SegDashError(f"empty slice of shape {image.shape}")
        return image

    def __call__(self, image: np.ndarray) -> np.ndarray:
        image = self.check_image(image)
        h, w = image.shape[-2:]
        x = normalize(image, self.window)
        if x.ndim == 2:
            x = x[None]
        m = self.multiple
        ph, pw = -h % m, -w % m
        if ph or pw:
            x = np.pad(x, ((0, 0), (0, ph), (0, pw)), mode="reflect" if min(h, w) > 1 else "edge")
        if self.spread:
            plan = [spread_tiles(n, self.tile, self.cfg.overlap, m) for n in (h + ph, w + pw)]
            roi, overlap = (plan[0][0], plan[1][0]), [plan[0][1], plan[1][1]]
        else:
            roi = (min(self.tile, h + ph), min(self.tile, w + pw))
            overlap = [_aligned_overlap(r, self.cfg.overlap, m) for r in roi]
        with torch.inference_mode():
            t = torch.from_numpy(np.ascontiguousarray(x[None])).to(self.device)
            out = sliding_window_inference(
                t, roi, self.batch_size(roi), self._predictor, overlap=overlap, mode="gaussian"
            )
            probs = out[0, :, :h, :w].float().cpu().numpy()
        return np.ascontiguousarray(probs, dtype=np.float32)


def decision_for(ckpt: Checkpoint, cfg: PredictConfig) -> Decision:
    """The checkpoint's decision (:attr:`Checkpoint.decision <core.nn.checkpoint.Checkpoint.decision>`),
    with ``cfg.threshold`` instead of its threshold when set, and no cleanup when ``cfg.cleanup`` is off."""
    d = getattr(ckpt, "decision", None) or Decision()
    return Decision(
        threshold=d.threshold if cfg.threshold is None else float(cfg.threshold),
        class_weights=d.class_weights,
        min_size=d.min_size if cfg.cleanup else 0,
        hole_size=d.hole_size if cfg.cleanup else 0,
    )


def slice_input(ckpt: Checkpoint, stack: np.ndarray, z: int) -> np.ndarray:
    """What the network takes for slice ``z`` of a (Z, Y, X) stack: the (Y, X) slice, or for a model
    with 2.5D context c the (2c + 1, Y, X) neighbourhood (:func:`core.data.neighbours.neighbourhood`)."""
    context = int(getattr(ckpt, "context", 0) or 0)
    return neighbourhood(stack, z, context) if context else np.array(stack[z])


def predict_slice(ckpt: Checkpoint, image: np.ndarray, cfg: PredictConfig = PredictConfig()) -> np.ndarray:
    """Class probabilities of one slice, tiled and Gaussian-blended.

    Args:
        ckpt: a loaded checkpoint (:func:`core.nn.checkpoint.load_checkpoint`). Its model is moved to
            ``cfg.device`` (and to channels-last) in place.
        image: (Y, X) slice in its stored dtype, any size (or (C, Y, X) for a C-channel model, such
            as :func:`slice_input` gives for a model with 2.5D context).
        cfg: tiling, TTA and device options.

    Shape:
        returns (K, Y, X) float32 probabilities summing to 1 over K (K = 2 for a binary model).

    Example:
        >>> probs = predict_slice(ckpt, image)                                # doctest: +SKIP
        >>> labels = labels_from_probs(probs, threshold=0.5)                  # doctest: +SKIP
    """
    return _Runner(ckpt, cfg)(image)
