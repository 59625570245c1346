"""Whole stacks: :func:`predict_stack` (slice by slice into multipage TIFFs) and
:func:`predict_headless` (``python -m core predict``).

Stacks (:func:`predict_stack`) are read one slice at a time (a memory-mapped TIFF is read with
plain file reads, so its pages do not pile up in the process) and written slice by slice to
ImageJ hyperstacks (:mod:`core.predict.hyperstack`: slice names as labels, the pixel size when
known), so peak memory is a few slices whatever the depth of the stack:

- masks: uint8 class indices, (Z, Y, X);
- probabilities: as :mod:`core.predict.probabilities` describes.
"""

from __future__ import annotations

import contextlib
import mmap
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..data.files import AtomicFile
from ..data.io import read_stack
from ..data.neighbours import context_indices
from ..data.pixelsize import PixelSize, pixel_size_of
from ..errors import SegDashError
from ..nn.checkpoint import Checkpoint, load_checkpoint
from ..nn.fit import fit_warnings
from .config import PredictConfig, PredictionResult, ProgressFn, checkpoint_facts
from .hyperstack import HyperstackWriter
from .inferer import _Runner, decision_for
from .probabilities import PROB_DTYPES, labels_from_stored, quantize, slice_uncertainty

__all__ = ["predict_stack", "predict_headless"]


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
        if (
            isinstance(images, np.memmap)
            and isinstance(root, np.memmap)
            and root.filename
            and images[0].flags.c_contiguous
            and images.strides[0] == images[0].nbytes
        ):
            delta = images.__array_interface__["data"][0] - root.__array_interface__["data"][0]
            self.offset0 = int(root.offset) + delta
            self.fh = open(root.filename, "rb")

    def __call__(self, z: int) -> np.ndarray:
        if self.fh is None:
            return np.array(self.images[z])
        out = np.empty(self.images.shape[1:], dtype=self.images.dtype)
        self.fh.seek(self.offset0 + z * out.nbytes)
        if self.fh.readinto(out.reshape(-1).view(np.uint8)) != out.nbytes:
            raise SegDashError(f"{self.fh.name}: slice {z} is truncated")
        return out

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()


class _PageWriter:
    """Append equal-shaped pages to an ImageJ hyperstack (:class:`~core.predict.hyperstack.HyperstackWriter`)
    under a temporary name (:class:`~core.data.files.AtomicFile`); :meth:`commit` moves it in place."""

    def __init__(self, path: Path, nbytes: int, info: dict[str, Any], names: list[str], **kwargs: Any):
        self.file = AtomicFile(path)
        self.path = self.file.path
        self.hw = HyperstackWriter(self.file.tmp, info, names, nbytes=nbytes, **kwargs)

    def write(self, page: np.ndarray) -> None:
        self.hw.write(page)

    def commit(self) -> Path:
        self.hw.close()
        return self.file.commit()

    def discard(self) -> None:
        with contextlib.suppress(Exception):
            self.hw.close()
        self.file.discard()


def _eta(t0: float, done: int, total: int) -> float:
    return (time.perf_counter() - t0) / max(done, 1) * (total - done)


def predict_stack(
    ckpt: Checkpoint,
    images: np.ndarray,
    *,
    out_masks: str | Path,
    out_prob: str | Path | None = None,
    cfg: PredictConfig = PredictConfig(),
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    channel: int | None = None,
    prob_dtype: str = "uint8",
    slice_names: list[str] | None = None,
    pixel_size: PixelSize | None = None,
) -> PredictionResult:
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
        slice_names: one name per slice, the files' slice labels (default ``slice_0000`` ...).
        pixel_size: the stack's pixel size, written to the files when known.

    Both files are ImageJ hyperstacks (:mod:`core.predict.hyperstack`): masks ZYX, probabilities
    ZYX (binary) or ZCYX (K classes), with the slice names as labels and the pixel size.

    Returns:
        :class:`PredictionResult`.
    """
    if prob_dtype not in PROB_DTYPES:
        raise SegDashError(f"prob_dtype must be one of {', '.join(PROB_DTYPES)}, got {prob_dtype!r}")
    runner = _Runner(ckpt, cfg)
    if images.ndim == 4 and channel is not None:
        if not 0 <= channel < images.shape[1]:
            raise SegDashError(f"channel {channel} out of range 0..{images.shape[1] - 1}")
        images = images[:, channel]
    elif channel is not None and images.ndim == 3:
        raise SegDashError("channel given, but the stack has no channel axis (expected (Z, C, Y, X))")
    if images.ndim != (3 if runner.in_channels == 1 or runner.context else 4):
        raise SegDashError(
            f"expected a (Z, Y, X) stack, got shape {images.shape}"
            + (" (choose a channel)" if images.ndim == 4 else "")
        )
    z_total, (h, w) = images.shape[0], images.shape[-2:]
    if z_total == 0:
        raise SegDashError("the stack has no slices")
    k = runner.n_classes
    binary = k == 2
    names = list(slice_names) if slice_names is not None else [f"slice_{z:04d}" for z in range(z_total)]
    if len(names) != z_total:
        raise SegDashError(f"{len(names)} slice names for {z_total} slices")
    class_names = list(ckpt.class_names) if len(ckpt.class_names) == k else [f"class {i}" for i in range(k)]
    meta = {"segdash": "masks", "classes": k, "class_names": class_names}
    pmeta = {**meta, "segdash": "prob", "scale": PROB_DTYPES[prob_dtype]}
    p_bytes = z_total * h * w * (1 if binary else k) * np.dtype(prob_dtype).itemsize
    reader = _SliceReader(images)
    read = (
        (lambda z: np.stack([reader(i) for i in context_indices(z, runner.context, z_total)]))
        if runner.context
        else reader
    )
    decision = runner.decision
    writers: list[_PageWriter] = []
    uncertainty: list[float] = []
    t0 = time.perf_counter()
    done = 0
    cancelled = False
    try:
        mw = _PageWriter(Path(out_masks), z_total * h * w, meta, names, pixel_size=pixel_size)
        writers.append(mw)
        pw = None
        if out_prob is not None:
            channels = None if binary else [f"P({c})" for c in class_names]
            pw = _PageWriter(Path(out_prob), p_bytes, pmeta, names, channel_names=channels, pixel_size=pixel_size)
        if pw is not None:
            writers.append(pw)
        for z in range(z_total):
            if cancel is not None and cancel.is_set():
                cancelled = True
                break
            probs = runner(read(z))
            stored = quantize(probs, prob_dtype)
            mw.write(labels_from_stored(stored, decision.threshold, binary, decision))
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
    return PredictionResult(
        masks_path, prob_path, done, z_total, cancelled, uncertainty, time.perf_counter() - t0, str(runner.device)
    )


def predict_headless(
    checkpoint: str | Path,
    input: Any,
    out: str | Path,
    *,
    prob: str | Path | None = None,
    tile: int | None = None,
    overlap: float = 0.25,
    batch_size: int = 4,
    tta: bool = False,
    threshold: float | None = None,
    channel: int | None = None,
    progress: ProgressFn | None = None,
    device: str | None = None,
    warn: Callable[[str], None] | None = None,
    as_stack: bool | None = None,
    **options: Any,
) -> dict[str, Any]:
    """``python -m core predict``: predict a stack file (or folder, ZIP, PNGs) to a masks TIFF.

    The input is read with :func:`core.data.io.read_stack`: an uncompressed TIFF stack is
    memory-mapped and read slice by slice, so memory does not grow with the number of slices. A TIFF
    of 3 or 4 planes stored as planar RGB is read as slices (``as_stack=True``), as one colour image
    (``False``), or refused with :class:`core.data.limits.StackOrColourNeeded` (``None``), never guessed.
    Peak RSS does not grow with depth: about 0.9 GB is importing torch and MONAI, the rest is one
    slice's forward pass (see ``benchmarks/bench_inference.py`` for 165 x 768 x 1024); a smaller
    ``tile`` lowers it at some cost in speed.

    Returns:
        JSON-ready summary ``{input, out, prob, slices, seconds, slices_per_s, mean_uncertainty,
        device, cancelled, warnings, checkpoint, decision}``; ``warnings`` lists what does not fit between
        the checkpoint and the input (:func:`core.nn.fit.fit_warnings`: intensity window and
        bit depth), ``checkpoint`` its class names, intensity window and training dataset,
        ``decision`` the threshold / class weights / cleanup used (the checkpoint's unless overridden).
    """
    cfg = PredictConfig(
        tile=tile, overlap=overlap, batch_size=batch_size, tta=tta, threshold=threshold, device=device, **options
    )
    ckpt = load_checkpoint(Path(checkpoint), device="cpu")
    stack = read_stack(input, channel=channel, as_stack=as_stack)
    warnings = fit_warnings(ckpt, images=stack.data)
    if warn is not None:
        for w in warnings:
            warn(w)
    stem = Path(str(input)).stem
    result = predict_stack(
        ckpt,
        stack.data,
        out_masks=Path(out),
        out_prob=Path(prob) if prob else None,
        cfg=cfg,
        progress=progress,
        slice_names=[n or f"{stem}_{z:04d}" for z, n in enumerate(stack.names)],
        pixel_size=pixel_size_of(input),
    )
    return {
        "input": str(input),
        "out": str(result.masks_path) if result.masks_path else None,
        "prob": str(result.prob_path) if result.prob_path else None,
        "slices": result.n_done,
        "seconds": round(result.seconds, 3),
        "slices_per_s": round(result.n_done / result.seconds, 3) if result.seconds > 0 else None,
        "mean_uncertainty": float(np.mean(result.uncertainty)) if result.uncertainty else None,
        "device": result.device,
        "cancelled": result.cancelled,
        "warnings": warnings,
        "checkpoint": checkpoint_facts(ckpt),
        "decision": decision_for(ckpt, cfg).to_dict(),
    }
