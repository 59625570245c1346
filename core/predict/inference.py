"""Prediction: tiled, blended inference of a trained U-Net on slices, stacks and datasets.

Numpy in, numpy out; torch lives only inside this module. Axis orders: an image slice is (Y, X) in
its stored dtype, a stack is (Z, Y, X), probabilities are (K, Y, X) float32 with one channel per class
(two for a binary model: background, foreground).

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
   probability maps are averaged: four forward passes, so 4x the time of a plain prediction.

Stacks (:func:`predict_stack`) are read one slice at a time (a memory-mapped TIFF is read with
plain file reads, so its pages do not pile up in the process) and written slice by slice to
multipage TIFFs, so peak memory is a few slices whatever the depth of the stack:

- masks: uint8 class indices, (Z, Y, X);
- probabilities: binary models store one channel, P(class 1), as (Z, Y, X); K-class models store
  (Z, K, Y, X). uint8 scaled so that 255 is probability 1 (default), or float16. The masks are
  computed from the stored (quantised) probabilities, so :func:`relabel` at the prediction's
  threshold gives back exactly the masks: a threshold slider re-labels from the stored map and
  never re-runs the network.

Uncertainty (:func:`uncertainty_map`) is the entropy of the class probabilities divided by
``log(K)``: 0 where the model is sure, 1 where all classes are equally likely. With TTA it is the
entropy of the flip-averaged probabilities, which also grows where the flips disagree.

Example:
    >>> import numpy as np
    >>> probs = np.array([[[0.9, 0.5]], [[0.1, 0.5]]], dtype=np.float32)  # (K=2, Y=1, X=2)
    >>> labels_from_probs(probs).tolist()
    [[0, 0]]
    >>> [round(float(u), 3) for u in uncertainty_map(probs)[0]]
    [0.469, 1.0]
"""

from __future__ import annotations

import contextlib
import json
import math
import mmap
import os
import re
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import tifffile
import torch
from monai.inferers import sliding_window_inference

from ..nn.checkpoint import Checkpoint, fit_warnings, load_checkpoint
from ..nn.device import amp_dtype_for, use_cpu_threads, uses_channels_last
from ..data.intensity import normalize
from ..data.io import atomic_write, read_stack
from ..nn.metrics import confusion_matrix, slice_scores
from ..nn.model import probabilities, required_multiple

__all__ = [
    "PredictConfig", "PredictionResult", "GROUND_TRUTH_STATUSES", "predict_slice", "labels_from_probs",
    "uncertainty_map", "slice_uncertainty", "predict_stack", "relabel", "read_prediction_tiff",
    "predict_dataset", "load_prediction", "list_predictions", "score_prediction", "predict_headless",
    "default_tile", "resolve_device", "PredictionJob", "prediction_jobs",
]

ProgressFn = Callable[[int, int, "float | None"], None]

#: Mask statuses that count as ground truth when a prediction is scored. ``from-prediction`` masks
#: are accepted predictions, not independent truth, and are not scored.
GROUND_TRUTH_STATUSES = ("labeled", "edited")

_SUMMARY = "summary.json"
_MASKS = "masks.tif"
_PROB = "prob.tif"
_PROB_DTYPES = {"uint8": 255.0, "float16": 1.0}  # stored dtype -> value that means probability 1
_BIGTIFF_BYTES = 2**31  # beyond this a classic TIFF's 32-bit offsets are too tight
#: On CPU a forward pass sees at most this many pixels (4 tiles of 256 x 256): activations of an smp
#: ResNet-18 U-Net then stay near 300 MB. CPU convolutions are parallel within a tile, so bigger
#: batches gain no speed there; on CUDA ``batch_size`` is used as given.
_CPU_BATCH_PIXELS = 4 * 256 * 256


@dataclass(frozen=True)
class PredictConfig:
    """How to predict.

    Args:
        tile: tile side in pixels, used as given (rounded to the model's input multiple: 32 for
            smp encoders, 16 for the classic U-Net). ``None`` (default): tiles of at most
            :func:`default_tile` pixels (the training patch size, at least 1024), sized per slice
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
        threshold: binary models: a pixel is foreground where P(class 1) > ``threshold``.
            Ignored for more than two classes (arg-max).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...; ``None``: CUDA when available, else CPU.
    """

    tile: int | None = None
    overlap: float = 0.25
    batch_size: int = 4
    tta: bool = False
    threshold: float = 0.5
    device: str | None = None

    def __post_init__(self) -> None:
        if self.tile is not None and int(self.tile) < 1:
            raise ValueError(f"tile must be a positive number of pixels, got {self.tile}")
        if not 0.0 <= float(self.overlap) < 1.0:
            raise ValueError(f"overlap must be in [0, 1), got {self.overlap}")
        if int(self.batch_size) < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if not 0.0 <= float(self.threshold) <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")


@dataclass(frozen=True)
class PredictionResult:
    """What :func:`predict_stack` / :func:`predict_dataset` wrote.

    Attributes:
        masks_path: the masks TIFF; ``None`` when cancelled before the first slice (nothing written).
        prob_path: the probability TIFF, or ``None`` when not asked for (or nothing written).
        n_done: slices predicted and written (slices ``0 .. n_done - 1``).
        n_total: slices in the stack.
        cancelled: the cancel event stopped the run; the files hold the ``n_done`` finished slices.
        uncertainty: per predicted slice, :func:`slice_uncertainty`.
        seconds: wall time.
        device: where the network ran.
        warnings: what does not fit between the checkpoint and the data
            (:func:`core.nn.checkpoint.fit_warnings`); filled by :func:`predict_dataset`.
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


# -- one slice ---------------------------------------------------------------------------------

def resolve_device(device: str | None = None) -> torch.device:
    """``device`` as a torch device; ``None``: CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but no CUDA GPU is available")
    return dev


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


def _spread_tiles(length: int, max_tile: int, overlap: float, multiple: int) -> tuple[int, float]:
    """``(tile, overlap fraction)`` along one axis: the fewest tiles of at most ``max_tile`` that
    cover ``length`` (a multiple of ``multiple``) with at least ``overlap`` shared between
    neighbours, each tile starting on the pooling grid.

    >>> _spread_tiles(512, 512, 0.25, 32)
    (512, 0.0)
    >>> _spread_tiles(1024, 512, 0.25, 32)[0]
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
        acc = self._forward(x)
        for dims in ((-1,), (-2,), (-2, -1)):
            acc += torch.flip(self._forward(torch.flip(x, dims)), dims)
        return acc / 4.0

    def check_image(self, image: np.ndarray) -> np.ndarray:
        image = np.asarray(image)
        if self.in_channels == 1:
            if image.ndim != 2:
                raise ValueError(f"expected a (Y, X) slice, got shape {image.shape}")
        elif image.ndim != 3 or image.shape[0] != self.in_channels:
            raise ValueError(f"the model takes {self.in_channels} channels: expected ({self.in_channels}, Y, X), "
                             f"got shape {image.shape}")
        if min(image.shape[-2:]) < 1:
            raise ValueError(f"empty slice of shape {image.shape}")
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
            plan = [_spread_tiles(n, self.tile, self.cfg.overlap, m) for n in (h + ph, w + pw)]
            roi, overlap = (plan[0][0], plan[1][0]), [plan[0][1], plan[1][1]]
        else:
            roi = (min(self.tile, h + ph), min(self.tile, w + pw))
            overlap = [_aligned_overlap(r, self.cfg.overlap, m) for r in roi]
        with torch.inference_mode():
            t = torch.from_numpy(np.ascontiguousarray(x[None])).to(self.device)
            out = sliding_window_inference(t, roi, self.batch_size(roi), self._predictor,
                                           overlap=overlap, mode="gaussian")
            probs = out[0, :, :h, :w].float().cpu().numpy()
        return np.ascontiguousarray(probs, dtype=np.float32)


def predict_slice(ckpt: Checkpoint, image: np.ndarray, cfg: PredictConfig = PredictConfig()) -> np.ndarray:
    """Class probabilities of one slice, tiled and Gaussian-blended.

    Args:
        ckpt: a loaded checkpoint (:func:`core.nn.checkpoint.load_checkpoint`). Its model is moved to
            ``cfg.device`` (and to channels-last) in place.
        image: (Y, X) slice in its stored dtype, any size (or (C, Y, X) for a C-channel model).
        cfg: tiling, TTA and device options.

    Shape:
        returns (K, Y, X) float32 probabilities summing to 1 over K (K = 2 for a binary model).

    Example:
        >>> probs = predict_slice(ckpt, image)                                # doctest: +SKIP
        >>> labels = labels_from_probs(probs, threshold=0.5)                  # doctest: +SKIP
    """
    return _Runner(ckpt, cfg)(image)


def labels_from_probs(probs: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """(K, Y, X) probabilities to (Y, X) uint8 class indices.

    Binary (K = 2, or K = 1 holding P(class 1) only): ``P(class 1) > threshold``. More classes:
    arg-max (``threshold`` is ignored).
    """
    probs = np.asarray(probs)
    if probs.ndim != 3:
        raise ValueError(f"expected (K, Y, X) probabilities, got shape {probs.shape}")
    if probs.shape[0] <= 2:
        return (probs[-1] > threshold).astype(np.uint8)
    return np.argmax(probs, axis=0).astype(np.uint8)


def uncertainty_map(probs: np.ndarray) -> np.ndarray:
    """Per-pixel normalised entropy ``-sum_k p_k log p_k / log K`` of (K, Y, X) probabilities.

    Returns (Y, X) float32 in [0, 1]: 0 where one class has probability 1, 1 where all K classes
    are equally likely. A (1, Y, X) input is read as P(class 1) of a binary model.
    """
    p = np.asarray(probs, dtype=np.float32)
    if p.ndim != 3:
        raise ValueError(f"expected (K, Y, X) probabilities, got shape {p.shape}")
    if p.shape[0] == 1:
        p = np.concatenate([1.0 - p, p])
    k = p.shape[0]
    q = np.clip(p, 1e-7, 1.0)
    ent = -(p * np.log(q)).sum(axis=0) / math.log(k)
    return np.clip(ent, 0.0, 1.0).astype(np.float32)


def slice_uncertainty(probs: np.ndarray) -> float:
    """One number per slice: the mean of :func:`uncertainty_map` over all its pixels, in [0, 1].

    A mean, not a maximum: boundaries are always somewhat uncertain, so a slice ranks high when
    much of it is uncertain (a region the model has not learned), not because it has many edges.
    """
    return float(uncertainty_map(probs).mean(dtype=np.float64))


# -- stacks ------------------------------------------------------------------------------------

def _quantize(probs: np.ndarray, prob_dtype: str) -> np.ndarray:
    """(K, Y, X) float probabilities to what is stored: P(class 1) only for K = 2."""
    p = probs[1] if probs.shape[0] == 2 else probs
    if prob_dtype == "uint8":
        return (np.clip(p, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return p.astype(np.float16)


def _labels_from_stored(stored: np.ndarray, threshold: float, binary: bool) -> np.ndarray:
    """Class indices from stored probabilities ((Y, X) P(class 1) if binary, else (K, Y, X))."""
    if binary:
        scale = 255.0 if stored.dtype == np.uint8 else 1.0
        return (stored.astype(np.float32) > np.float32(threshold * scale)).astype(np.uint8)
    return np.argmax(stored, axis=0).astype(np.uint8)


class _SliceReader:
    """Read slice ``z`` of a (Z, Y, X) or (Z, C, Y, X) array into memory.

    A memory-mapped stack is read with ordinary file reads at the slice's offset instead of through
    the map: pages touched through a map stay counted in the process (a 2 GB stack read whole
    through its map would hold 2 GB), pages read with ``readinto`` do not.
    """

    def __init__(self, images: np.ndarray):
        self.images = images
        self.fh = None
        self.offset0 = None
        root = images
        while isinstance(root, np.ndarray) and not isinstance(root.base, mmap.mmap):
            root = root.base
        if (isinstance(images, np.memmap) and isinstance(root, np.memmap) and root.filename
                and images[0].flags.c_contiguous and images.strides[0] == images[0].nbytes):
            delta = images.__array_interface__["data"][0] - root.__array_interface__["data"][0]
            self.offset0 = int(root.offset) + delta
            self.fh = open(root.filename, "rb")

    def __call__(self, z: int) -> np.ndarray:
        if self.fh is None:
            return np.array(self.images[z])
        out = np.empty(self.images.shape[1:], dtype=self.images.dtype)
        self.fh.seek(self.offset0 + z * out.nbytes)
        if self.fh.readinto(out.reshape(-1).view(np.uint8)) != out.nbytes:
            raise ValueError(f"{self.fh.name}: slice {z} is truncated")
        return out

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()


class _PageWriter:
    """Append equal-shaped pages to a TIFF under a temporary name; :meth:`commit` moves it in place."""

    def __init__(self, path: Path, nbytes: int, metadata: dict[str, Any]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{time.time_ns()}.tmp")
        self.metadata = metadata
        self.tw = tifffile.TiffWriter(self.tmp, bigtiff=nbytes > _BIGTIFF_BYTES)

    def write(self, page: np.ndarray) -> None:
        self.tw.write(page, contiguous=True, photometric="minisblack", metadata=self.metadata)

    def commit(self) -> Path:
        self.tw.close()
        with open(self.tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(self.tmp, self.path)
        return self.path

    def discard(self) -> None:
        with contextlib.suppress(Exception):
            self.tw.close()
        self.tmp.unlink(missing_ok=True)


def _eta(t0: float, done: int, total: int) -> float:
    return (time.perf_counter() - t0) / max(done, 1) * (total - done)


def predict_stack(ckpt: Checkpoint, images: np.ndarray, *, out_masks: str | Path, out_prob: str | Path | None = None,
                  cfg: PredictConfig = PredictConfig(), progress: ProgressFn | None = None,
                  cancel: threading.Event | None = None, channel: int | None = None,
                  prob_dtype: str = "uint8") -> PredictionResult:
    """Predict every slice of a stack, writing masks (and probabilities) to TIFF slice by slice.

    Memory stays at a few slices whatever the depth: one slice is read, predicted and written at a
    time (see the module docstring). Files are written under a temporary name beside the target and
    moved in place with ``os.replace`` at the end, so a reader never sees a half-written file.

    Args:
        ckpt: loaded checkpoint.
        images: (Z, Y, X) stack in its stored dtype, in memory or a ``np.memmap``; (Z, C, Y, X) with
            ``channel`` to pick one channel (or C = the model's input channels).
        out_masks: TIFF path for the (Z, Y, X) uint8 class indices.
        out_prob: TIFF path for the probabilities (binary: (Z, Y, X) P(class 1); K classes:
            (Z, K, Y, X)); ``None``: not kept.
        cfg: tiling, TTA, threshold and device.
        progress: called after each slice as ``progress(done, total, eta_seconds)``.
        cancel: when set (checked before each slice), the run stops; the files then hold the
            completed slices ``0 .. n_done - 1`` as valid TIFFs. Cancelled before the first slice,
            nothing is written and existing files are left alone (paths ``None``).
        channel: channel of a (Z, C, Y, X) stack to predict.
        prob_dtype: ``"uint8"`` (probability x 255, the default) or ``"float16"``.

    Returns:
        :class:`PredictionResult`.
    """
    if prob_dtype not in _PROB_DTYPES:
        raise ValueError(f"prob_dtype must be one of {', '.join(_PROB_DTYPES)}, got {prob_dtype!r}")
    runner = _Runner(ckpt, cfg)
    if images.ndim == 4 and channel is not None:
        if not 0 <= channel < images.shape[1]:
            raise ValueError(f"channel {channel} out of range 0..{images.shape[1] - 1}")
        images = images[:, channel]
    elif channel is not None and images.ndim == 3:
        raise ValueError("channel given, but the stack has no channel axis (expected (Z, C, Y, X))")
    if images.ndim != (3 if runner.in_channels == 1 else 4):
        raise ValueError(f"expected a (Z, Y, X) stack, got shape {images.shape}"
                         + (" (choose a channel)" if images.ndim == 4 else ""))
    z_total, (h, w) = images.shape[0], images.shape[-2:]
    if z_total == 0:
        raise ValueError("the stack has no slices")
    k = runner.n_classes
    binary = k == 2
    meta = {"segdash": "masks", "classes": k}
    pmeta = {"segdash": "prob", "classes": k, "scale": _PROB_DTYPES[prob_dtype]}
    p_bytes = z_total * h * w * (1 if binary else k) * np.dtype(prob_dtype).itemsize
    reader = _SliceReader(images)
    writers: list[_PageWriter] = []
    uncertainty: list[float] = []
    t0 = time.perf_counter()
    done = 0
    cancelled = False
    try:
        mw = _PageWriter(Path(out_masks), z_total * h * w, meta)
        writers.append(mw)
        pw = _PageWriter(Path(out_prob), p_bytes, pmeta) if out_prob is not None else None
        if pw is not None:
            writers.append(pw)
        for z in range(z_total):
            if cancel is not None and cancel.is_set():
                cancelled = True
                break
            probs = runner(reader(z))
            stored = _quantize(probs, prob_dtype)
            mw.write(_labels_from_stored(stored, cfg.threshold, binary))
            if pw is not None:
                pw.write(stored)
            uncertainty.append(slice_uncertainty(probs))
            del probs, stored
            done += 1
            if progress is not None:
                progress(done, z_total, _eta(t0, done, z_total))
        if done == 0:
            for wr in writers:
                wr.discard()
            masks_path = prob_path = None
        else:
            masks_path = mw.commit()
            prob_path = pw.commit() if pw is not None else None
    except BaseException:
        for wr in writers:
            wr.discard()
        raise
    finally:
        reader.close()
    return PredictionResult(masks_path, prob_path, done, z_total, cancelled, uncertainty,
                            time.perf_counter() - t0, str(runner.device))


def read_prediction_tiff(path: str | Path) -> np.ndarray:
    """A masks or probability TIFF written by :func:`predict_stack`, memory-mapped when possible.

    Returns (Z, Y, X) for masks and binary probabilities, (Z, K, Y, X) for K-class probabilities,
    also when Z = 1 (the TIFF alone would drop that axis).
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: no such prediction file")
    try:
        with tifffile.TiffFile(path) as tif:
            meta = dict(tif.shaped_metadata[0]) if tif.shaped_metadata else {}
        try:
            arr = tifffile.memmap(path, mode="r")
        except ValueError:  # compressed or not contiguous: read it
            arr = tifffile.imread(path)
    except (OSError, tifffile.TiffFileError) as exc:
        raise ValueError(f"{path}: cannot read the prediction ({exc})") from None
    k = int(meta.get("classes", 2))
    if meta.get("segdash") == "prob" and k > 2:
        return arr.reshape((-1, k) + arr.shape[-2:])
    return arr.reshape((-1,) + arr.shape[-2:])


def relabel(prob_path: str | Path, threshold: float = 0.5, z: int | None = None) -> np.ndarray:
    """Masks from a stored probability TIFF at a new threshold, without running the network.

    Args:
        prob_path: probability TIFF from :func:`predict_stack` / :func:`predict_dataset`.
        threshold: binary models: foreground where P(class 1) > ``threshold``; ignored (arg-max)
            for more classes.
        z: one slice (returns (Y, X)); ``None``: all (returns (Z, Y, X)), computed slice by slice.

    Returns:
        uint8 class indices. At the threshold of the prediction they equal the stored masks.
    """
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    prob = read_prediction_tiff(prob_path)
    binary = prob.ndim == 3
    if z is not None:
        if not 0 <= z < prob.shape[0]:
            raise ValueError(f"slice {z} out of range 0..{prob.shape[0] - 1}")
        return _labels_from_stored(np.asarray(prob[z]), threshold, binary)
    out = np.empty((prob.shape[0],) + prob.shape[-2:], np.uint8)
    for i in range(prob.shape[0]):
        out[i] = _labels_from_stored(np.asarray(prob[i]), threshold, binary)
    return out


# -- datasets in a workspace -------------------------------------------------------------------

def _clean(value: Any) -> Any:
    """JSON-safe: numpy scalars and arrays to Python, NaN to ``None``."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_clean(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else float(value)
    return value


def score_prediction(ws: Any, dataset: str, labels: np.ndarray | Callable[[int], np.ndarray],
                     zs: Sequence[int] | None = None) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Score predicted masks against the dataset's ground-truth masks.

    Ground truth is a slice with status ``labeled`` or ``edited`` (:data:`GROUND_TRUTH_STATUSES`).

    Args:
        ws: the :class:`core.store.workspace.Workspace`.
        dataset: dataset name.
        labels: predicted (Z, Y, X) class indices (array or memmap), or ``labels(z) -> (Y, X)``.
        zs: slices to consider (default all ground-truth slices among ``0 .. len(labels) - 1``).

    Returns:
        ``(rows, confusion)``: one row per scored slice in slice order with ``z, name, status,
        dice, iou, pixel_error, accuracy, dice_per_class, iou_per_class`` (``dice``/``iou``: of the
        foreground for binary, the mean over classes otherwise), and the (K, K) confusion matrix
        summed over them (rows: truth, columns: prediction).
    """
    info = ws.dataset(dataset)
    k = info.n_classes
    get = labels if callable(labels) else (lambda z: np.asarray(labels[z]))
    n_pred = None if callable(labels) else labels.shape[0]
    if zs is None:
        zs = [z for z, s in enumerate(info.statuses) if s in GROUND_TRUTH_STATUSES
              and (n_pred is None or z < n_pred)]
    rows: list[dict[str, Any]] = []
    conf = np.zeros((k, k), np.int64)
    for z in zs:
        truth = ws.read_mask(dataset, z)
        if truth is None:
            continue
        pred = get(z)
        s = slice_scores(pred, truth, k)
        conf += np.asarray(confusion_matrix(pred, truth, k), dtype=np.int64)
        rows.append({
            "z": int(z), "name": info.slice_names[z], "status": info.statuses[z],
            "dice": float(s["dice_fg"] if "dice_fg" in s else s["mean_dice"]),
            "iou": float(s["iou_fg"] if "iou_fg" in s else s["mean_iou"]),
            "pixel_error": float(s["pixel_error"]), "accuracy": float(s["accuracy"]),
            "dice_per_class": [float(v) for v in s["dice"]], "iou_per_class": [float(v) for v in s["iou"]],
        })
    return rows, conf


def _run_id_for(ckpt: Checkpoint, checkpoint_path: Path) -> str:
    rid = getattr(ckpt, "run_id", None) or checkpoint_path.stem
    rid = re.sub(r"[^A-Za-z0-9._-]", "_", str(rid)).lstrip("._-")[:64]
    return rid or "prediction"


def predict_dataset(ws: Any, dataset: str, checkpoint_path: str | Path, cfg: PredictConfig = PredictConfig(),
                    run_id: str | None = None, progress: ProgressFn | None = None,
                    cancel: threading.Event | None = None) -> PredictionResult:
    """Predict a whole dataset of a workspace and store it for review.

    Writes into ``ws.predictions_dir(dataset, run_id)``: ``masks.tif`` (Z, Y, X) uint8,
    ``prob.tif`` (uint8 x 255; see :func:`predict_stack`) and ``summary.json`` with the checkpoint,
    settings, per-slice uncertainty, scores against ground truth where a slice has a labeled or
    edited mask, and their confusion matrix. ``summary.json`` is written last, so
    :func:`list_predictions` lists a prediction only once it is complete (or cancelled and saved).

    Args:
        ws: the workspace.
        dataset: dataset name.
        checkpoint_path: checkpoint file (:func:`core.nn.checkpoint.save_checkpoint`).
        cfg: prediction options.
        run_id: name of the prediction; default the checkpoint's run id, else its file stem.
        progress: ``progress(done, total, eta_seconds)`` after each slice.
        cancel: event that stops the run after the current slice; finished slices are kept.
    """
    checkpoint_path = Path(checkpoint_path)
    info = ws.dataset(dataset)
    ckpt = load_checkpoint(checkpoint_path, device="cpu")
    k = int(ckpt.model_config.n_classes)
    if k != info.n_classes:
        raise ValueError(f"the checkpoint predicts {k} classes ({', '.join(ckpt.class_names)}); dataset "
                         f"{dataset!r} has {info.n_classes} ({', '.join(info.class_names)})")
    run_id = run_id or _run_id_for(ckpt, checkpoint_path)
    folder = ws.predictions_dir(dataset, run_id)
    images = ws.read_images(dataset)
    warnings = tuple(fit_warnings(ckpt, images=images, class_names=info.class_names, dataset=dataset))
    result = predict_stack(ckpt, images, out_masks=folder / _MASKS, out_prob=folder / _PROB, cfg=cfg,
                           progress=progress, cancel=cancel)
    result = replace(result, warnings=warnings)
    if result.n_done == 0:
        return result
    masks = read_prediction_tiff(result.masks_path)
    rows, conf = score_prediction(ws, dataset, masks)
    del masks
    slices = [{"z": z, "name": info.slice_names[z], "status": info.statuses[z], "uncertainty": u}
              for z, u in enumerate(result.uncertainty)]
    for r in rows:
        slices[r["z"]].update({key: r[key] for key in ("dice", "iou", "pixel_error", "accuracy",
                                                       "dice_per_class", "iou_per_class")})
    summary = {
        "dataset": dataset, "run_id": run_id, "checkpoint": str(checkpoint_path.resolve()),
        "checkpoint_epoch": getattr(ckpt, "epoch", None), "class_names": list(info.class_names),
        "n_classes": k, "threshold": cfg.threshold, "config": asdict(cfg), "tile": default_tile(ckpt, cfg.tile, resolve_device(cfg.device)),
        "norm_window": list(ckpt.norm_window), "prob_dtype": "uint8", "prob_scale": 255.0,
        "device": result.device, "created": time.time(), "seconds": result.seconds,
        "n_done": result.n_done, "n_total": result.n_total, "cancelled": result.cancelled,
        "mean_uncertainty": float(np.mean(result.uncertainty)),
        "mean_dice": float(np.mean([r["dice"] for r in rows])) if rows else None,
        "confusion": conf, "slices": slices, "warnings": list(warnings),
        "trained_on": ckpt.extra.get("dataset"), "model_class_names": list(ckpt.class_names),
    }
    text = json.dumps(_clean(summary), indent=1)
    atomic_write(folder / _SUMMARY, lambda fh: fh.write(text.encode()))
    return result


def load_prediction(ws: Any, dataset: str, run_id: str) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    """A stored prediction: ``(masks, probs, summary)``.

    Returns:
        masks: (Z', Y, X) uint8 memmap, Z' = slices predicted (all unless cancelled);
        probs: as stored (uint8 = probability x 255): (Z', Y, X) P(class 1) for binary,
            (Z', K, Y, X) otherwise; ``None`` if absent. Re-threshold with :func:`relabel`;
        summary: the ``summary.json`` dict (see :func:`predict_dataset`).
    """
    folder = _prediction_folder(ws, dataset, run_id)
    try:
        summary = json.loads((folder / _SUMMARY).read_text())
    except (OSError, ValueError):
        known = ", ".join(list_predictions(ws, dataset)) or "none"
        raise ValueError(f"no prediction {run_id!r} for dataset {dataset!r} (predictions: {known})") from None
    masks = read_prediction_tiff(folder / _MASKS)
    probs = read_prediction_tiff(folder / _PROB) if (folder / _PROB).exists() else None
    return masks, probs, summary


def _prediction_folder(ws: Any, dataset: str, run_id: str | None = None) -> Path:
    """Same layout as ``Workspace.predictions_dir`` without creating folders."""
    from ..store.workspace import validate_name

    base = Path(ws.root) / "predictions" / validate_name(dataset)
    return base if run_id is None else base / validate_name(run_id)


def list_predictions(ws: Any, dataset: str) -> list[str]:
    """Run ids with a complete stored prediction for ``dataset``, newest first."""
    base = _prediction_folder(ws, dataset)
    if not base.is_dir():
        return []
    found = [p for p in base.iterdir() if (p / _SUMMARY).is_file() and (p / _MASKS).is_file()]
    found.sort(key=lambda p: (p / _SUMMARY).stat().st_mtime, reverse=True)
    return [p.name for p in found]


# -- background prediction of a dataset -----------------------------------------------------------

class PredictionJob:
    """:func:`predict_dataset` in a background thread, for a page to poll and cancel.

    The thread calls no UI code: it fills a snapshot (state, slices done, ETA, result, error) that
    :meth:`snapshot` copies. :meth:`cancel` sets the event :func:`predict_dataset` checks before
    each slice: the finished slices are kept and stored as a (cancelled) prediction.

    States: ``running``, then ``done``, ``cancelled`` or ``failed`` (``error`` holds the message of
    a refusal such as a class-count mismatch, or of an internal error).

    Example:
        >>> job = PredictionJob(ws, "isbi2012", "runs/r1/best.pt").start()    # doctest: +SKIP
        >>> job.cancel(); job.join(); job.snapshot()["state"]                 # doctest: +SKIP
        'cancelled'
    """

    def __init__(self, ws: Any, dataset: str, checkpoint_path: str | Path, cfg: PredictConfig = PredictConfig(),
                 run_id: str | None = None):
        self.ws, self.dataset, self.checkpoint_path, self.cfg = ws, dataset, Path(checkpoint_path), cfg
        self.run_id = run_id
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._snap: dict[str, Any] = {"state": "running", "done": 0, "total": 0, "eta_s": None, "error": "",
                                      "result": None, "started": time.time(), "run_id": run_id,
                                      "dataset": dataset, "cancel_requested": False}

    def start(self) -> "PredictionJob":
        self._thread = threading.Thread(target=self._run, name=f"segdash-predict-{self.dataset}", daemon=True)
        self._thread.start()
        return self

    def _progress(self, done: int, total: int, eta: float | None) -> None:
        with self._lock:
            self._snap.update(done=done, total=total, eta_s=eta)

    def _run(self) -> None:
        try:
            result = predict_dataset(self.ws, self.dataset, self.checkpoint_path, self.cfg, run_id=self.run_id,
                                     progress=self._progress, cancel=self._cancel)
            final = {"state": "cancelled" if result.cancelled else "done", "result": result,
                     "done": result.n_done, "total": result.n_total}
        except ValueError as exc:
            final = {"state": "failed", "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - every error becomes the job's failed state
            final = {"state": "failed", "error": f"{type(exc).__name__}: {exc}"}
        with self._lock:
            self._snap.update(final)

    def cancel(self) -> None:
        """Stop after the slice being predicted; the finished ones are kept."""
        self._cancel.set()
        with self._lock:
            self._snap["cancel_requested"] = True

    def is_active(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.is_active()

    def snapshot(self) -> dict[str, Any]:
        """A copy of ``{state, done, total, eta_s, error, result, started, run_id, dataset, cancel_requested}``."""
        with self._lock:
            return dict(self._snap)


_PREDICTION_JOBS: dict[tuple[str, str], PredictionJob] = {}
_PREDICTION_JOBS_LOCK = threading.Lock()


def prediction_jobs(ws: Any, dataset: str, start: PredictionJob | None = None) -> PredictionJob | None:
    """The process-wide latest :class:`PredictionJob` of a workspace's dataset (so a page finds it
    again after a rerun or reload); with ``start``, start that job unless one is running.

    Raises:
        ValueError: ``start`` given while a prediction of that dataset is running.
    """
    key = (str(Path(ws.root).resolve()), dataset)
    with _PREDICTION_JOBS_LOCK:
        current = _PREDICTION_JOBS.get(key)
        if start is None:
            return current
        if current is not None and current.is_active():
            raise ValueError(f"a prediction of {dataset!r} is already running: cancel it or wait for it")
        _PREDICTION_JOBS[key] = start.start()
        return start


# -- headless ----------------------------------------------------------------------------------

def predict_headless(checkpoint: str | Path, input: Any, out: str | Path, *, prob: str | Path | None = None,
                     tile: int | None = None, overlap: float = 0.25, batch_size: int = 4, tta: bool = False,
                     threshold: float = 0.5, channel: int | None = None, progress: ProgressFn | None = None,
                     device: str | None = None, warn: Callable[[str], None] | None = None) -> dict[str, Any]:
    """``python -m core predict``: predict a stack file (or folder, ZIP, PNGs) to a masks TIFF.

    The input is read with :func:`core.data.io.read_stack`: an uncompressed TIFF stack is
    memory-mapped and read slice by slice, so memory does not grow with the number of slices.
    Peak RSS does not grow with depth: about 0.9 GB is importing torch and MONAI, the rest is one
    slice's forward pass (see ``benchmarks/bench_inference.py`` for 165 x 768 x 1024); a smaller
    ``tile`` lowers it at some cost in speed.

    Returns:
        JSON-ready summary ``{input, out, prob, slices, seconds, slices_per_s, mean_uncertainty,
        device, cancelled, warnings, checkpoint}``; ``warnings`` lists what does not fit between
        the checkpoint and the input (:func:`core.nn.checkpoint.fit_warnings`: intensity window and
        bit depth), ``checkpoint`` its class names, intensity window and training dataset.
    """
    cfg = PredictConfig(tile=tile, overlap=overlap, batch_size=batch_size, tta=tta, threshold=threshold,
                        device=device)
    ckpt = load_checkpoint(Path(checkpoint), device="cpu")
    stack = read_stack(input, channel=channel)
    warnings = fit_warnings(ckpt, images=stack.data)
    if warn is not None:
        for w in warnings:
            warn(w)
    result = predict_stack(ckpt, stack.data, out_masks=Path(out), out_prob=Path(prob) if prob else None,
                           cfg=cfg, progress=progress)
    return {
        "input": str(input), "out": str(result.masks_path) if result.masks_path else None,
        "prob": str(result.prob_path) if result.prob_path else None, "slices": result.n_done,
        "seconds": round(result.seconds, 3),
        "slices_per_s": round(result.n_done / result.seconds, 3) if result.seconds > 0 else None,
        "mean_uncertainty": float(np.mean(result.uncertainty)) if result.uncertainty else None,
        "device": result.device, "cancelled": result.cancelled, "warnings": warnings,
        "checkpoint": {"class_names": list(ckpt.class_names), "norm_window": list(ckpt.norm_window),
                       "trained_on": ckpt.extra.get("dataset"), "run_id": ckpt.run_id},
    }
