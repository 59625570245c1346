"""Volumes of any size, chunk by chunk: :func:`predict_volume` reads a (Z, Y, X) volume (Zarr,
OME-Zarr, or a TIFF stack) a block at a time and writes the class indices to a Zarr array chunk
by chunk, so memory is a few blocks whatever the volume's size; under torchrun the blocks are
shared among the ranks (``torchrun --nproc_per_node=N -m core predict --input VOL.zarr --out
OUT.zarr``).

How a volume is cut (the same whatever the number of processes, so N processes write the very
bytes one process writes):

- The output's chunks are the blocks: ``(cz, block, block)`` with ``cz`` the input's chunk depth (at
  most 16) and ``block`` (1024 by default) cut to the slice. Rank ``r`` of ``W`` predicts blocks
  ``r, r + W, ...`` of the chunk grid and writes each as one whole chunk: no two ranks write the same
  chunk, and no lock is needed.
- Each slice of a block is predicted with :mod:`core.predict.inferer` (tiles blended with MONAI's
  Gaussian ``sliding_window_inference``) on the block grown by ``halo`` pixels on every side (cut at
  the volume's edges), then cropped back, so block borders see context; a block that covers the
  whole slice has no halo and is predicted exactly as :func:`~core.predict.stack.predict_stack` does.
- Written under a temporary name beside ``out`` and renamed into place at the end (rank 0, after
  every rank is done), so a reader never sees a half-written output.
- With ``prob`` (``predict --prob P.zarr``) the probabilities go to a second Zarr array, chunked as
  the masks and written block by block with them, as :mod:`core.predict.probabilities` stores them:
  uint8, 255 = probability 1; a binary model's P(class 1) as (Z, Y, X), K classes as (Z, K, Y, X).
  Its ``segdash`` attributes say ``kind: probabilities``, the classes and the scale.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..data.chunked import Volume, blocks, create_volume, is_chunked, open_volume, sample_slices
from ..data.io import read_stack
from ..errors import SegDashError
from ..nn import distributed
from ..nn.checkpoint import Checkpoint, load_checkpoint
from ..nn.fit import fit_warnings
from .config import PredictConfig, ProgressFn, checkpoint_facts
from .inferer import _Runner, decision_for
from .probabilities import labels_from_stored, quantize

__all__ = ["predict_volume", "predict_volume_headless", "DEFAULT_BLOCK", "MAX_CHUNK_DEPTH"]

DEFAULT_BLOCK = 1024  # y/x side of an output chunk (one block predicted at a time)
MAX_CHUNK_DEPTH = 16  # slices in an output chunk, at most


def _halo(runner: _Runner, halo: int | None) -> int:
    """Context added around a block: ``halo`` or a quarter tile, on the model's pooling grid."""
    m = runner.multiple
    h = runner.tile // 4 if halo is None else int(halo)
    return max(0, -(-h // m) * m)


def _refusal(out: Path, prob: Path | None) -> str | None:
    """Why ``out`` (and ``prob``) cannot be created, or None."""
    for path in (out, prob):
        if path is not None and path.exists():
            return f"{path}: already exists; choose a new name or remove it first"
    if prob is not None and prob.resolve() == out.resolve():
        return f"{prob}: the probabilities need another name than the masks"
    return None


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(3)}")


def _create_prob(path: Path, shape: tuple[int, int, int], chunks: tuple[int, ...], n_classes: int, ckpt, fmt: int):
    """The empty probability array: (Z, Y, X) P(class 1) for a binary model, else (Z, K, Y, X)."""
    import zarr

    binary = n_classes == 2
    full = tuple(shape) if binary else (shape[0], n_classes, *shape[1:])
    chunk = tuple(chunks) if binary else (chunks[0], n_classes, *chunks[1:])
    names = ("z", "y", "x") if binary else ("z", "c", "y", "x")
    arr = zarr.create_array(
        str(path),
        shape=full,
        chunks=chunk,
        dtype=np.uint8,
        fill_value=0,
        zarr_format=fmt,
        dimension_names=names if fmt == 3 else None,
    )
    arr.attrs["segdash"] = {
        "kind": "probabilities",
        "classes": n_classes,
        "class_names": list(ckpt.class_names or []),
        "scale": 255,
        "channel": "P(class 1)" if binary else "one per class",
        "run_id": ckpt.run_id,
    }
    return arr


def predict_volume(
    ckpt: Checkpoint,
    volume: Volume,
    out: str | Path,
    *,
    cfg: PredictConfig = PredictConfig(),
    block: int = DEFAULT_BLOCK,
    halo: int | None = None,
    zarr_format: int = 3,
    prob: str | Path | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Predict every slice of ``volume`` into a new Zarr array of uint8 class indices at ``out``.

    Args:
        ckpt: loaded checkpoint of a one-channel model.
        volume: the (Z, Y, X) input (:func:`core.data.chunked.open_volume`, or ``Volume.from_array``).
        out: the ``.zarr`` folder to create (must not exist).
        cfg: tiling, TTA, threshold and device, as for a stack.
        block: y/x side of the output chunks, each predicted as one block.
        halo: context in pixels around a block (default: a quarter of the tile); unused when a
            block covers the whole slice.
        zarr_format: 2 or 3.
        prob: a second ``.zarr`` folder to create for the probabilities (uint8, 255 = 1; binary:
            P(class 1) as (Z, Y, X), K classes: (Z, K, Y, X)), written block by block with the masks.
        progress: ``progress(blocks done, blocks of this rank, eta_seconds)`` after each block.

    Returns:
        ``{out, prob, shape, chunks, halo, blocks, blocks_here, seconds, device, rank, world_size}``.

    Under torchrun every rank must call it with the same arguments (see the module docstring).
    """
    runner = _Runner(ckpt, cfg)
    if runner.in_channels != 1:
        raise SegDashError(
            f"the model takes {runner.in_channels} channels; volumes are predicted with 1-channel models"
        )
    out = Path(out)
    z_total, h, w = volume.shape
    if min(volume.shape) < 1:
        raise SegDashError(f"the volume is empty: shape {volume.shape}")
    if int(block) < runner.multiple:
        raise SegDashError(f"block must be at least {runner.multiple} pixels, got {block}")
    chunks = (min(z_total, volume.chunks[0], MAX_CHUNK_DEPTH), min(h, int(block)), min(w, int(block)))
    pad = 0 if chunks[1:] == (h, w) else _halo(runner, halo)
    grid = list(blocks(volume.shape, chunks))
    mine = grid[distributed.rank() :: distributed.world_size()]
    binary = runner.n_classes == 2
    decision = decision_for(ckpt, cfg)  # the checkpoint's tuned threshold and cleanup unless overridden
    prob = Path(prob) if prob is not None else None
    error = None
    tmp = ptmp = None
    if distributed.is_main():
        error = _refusal(out, prob)
        if error is None:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = _tmp_name(out)
            arr = create_volume(tmp, volume.shape, np.uint8, chunks, zarr_format)
            arr.attrs["segdash"] = {"kind": "masks", "classes": runner.n_classes, "run_id": ckpt.run_id}
            if prob is not None:
                prob.parent.mkdir(parents=True, exist_ok=True)
                ptmp = _tmp_name(prob)
                _create_prob(ptmp, volume.shape, chunks, runner.n_classes, ckpt, zarr_format)
    error, tmp, ptmp = distributed.broadcast_object((error, tmp, ptmp))
    if error:
        raise SegDashError(error)
    import zarr

    arr = zarr.open_array(str(tmp), mode="r+")
    parr = zarr.open_array(str(ptmp), mode="r+") if ptmp is not None else None
    t0 = time.perf_counter()
    try:
        for done, (bz, by, bx) in enumerate(mine, start=1):
            ys = slice(max(0, by.start - pad), min(h, by.stop + pad))
            xs = slice(max(0, bx.start - pad), min(w, bx.stop + pad))
            region = volume.read(bz, ys, xs)
            crop = (slice(by.start - ys.start, by.stop - ys.start), slice(bx.start - xs.start, bx.stop - xs.start))
            labels = np.empty((bz.stop - bz.start, by.stop - by.start, bx.stop - bx.start), np.uint8)
            probs = (
                np.empty((len(labels),) + parr.shape[1:-2] + labels.shape[1:], np.uint8) if parr is not None else None
            )
            for i, image in enumerate(region):
                stored = quantize(runner(image), "uint8")
                labels[i] = labels_from_stored(stored, decision.threshold, binary, decision)[crop]
                if probs is not None:
                    probs[i] = stored[(...,) + crop]
            arr[bz, by, bx] = labels
            if parr is not None:
                parr[(bz,) + (slice(None),) * (parr.ndim - 3) + (by, bx)] = probs
            if progress is not None:
                elapsed = time.perf_counter() - t0
                progress(done, len(mine), elapsed / done * (len(mine) - done))
        distributed.barrier()
        if distributed.is_main():
            if ptmp is not None:
                os.replace(ptmp, prob)
            os.replace(tmp, out)
    except BaseException:
        if distributed.is_main():
            for path in (tmp, ptmp):
                if path is not None:
                    shutil.rmtree(path, ignore_errors=True)
        raise
    return {
        "out": str(out),
        "prob": str(prob) if prob is not None else None,
        "shape": list(volume.shape),
        "chunks": list(chunks),
        "halo": pad,
        "blocks": len(grid),
        "blocks_here": len(mine),
        "seconds": round(time.perf_counter() - t0, 3),
        "device": str(runner.device),
        "rank": distributed.rank(),
        "world_size": distributed.world_size(),
    }


def predict_volume_headless(
    checkpoint: str | Path,
    input: str | Path,
    out: str | Path,
    *,
    channel: int | None = None,
    block: int = DEFAULT_BLOCK,
    halo: int | None = None,
    as_stack: bool | None = None,
    prob: str | Path | None = None,
    progress: ProgressFn | None = None,
    warn: Callable[[str], None] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """``python -m core predict --out OUT.zarr`` (also under torchrun): a Zarr / OME-Zarr folder is opened
    by reference (:func:`core.data.chunked.open_volume`), anything else is read as a stack
    (:func:`core.data.io.read_stack`: a TIFF is memory-mapped); then :func:`predict_volume`.
    ``options`` are :class:`~core.predict.config.PredictConfig`'s (tile, overlap, batch_size, tta,
    dihedral, threshold, cleanup, device), as for :func:`core.predict.stack.predict_headless`;
    ``prob``: a ``.zarr`` folder for the probabilities (see :func:`predict_volume`).

    Returns:
        :func:`predict_volume`'s summary with ``input``, ``warnings`` (what does not fit between the
        checkpoint and a sample of the volume) and ``checkpoint`` (class names, window, run).
    """
    distributed.init()
    cfg = PredictConfig(**options)
    ckpt = load_checkpoint(Path(checkpoint), device="cpu")
    if is_chunked(input):
        volume = open_volume(input, channel=channel)
    else:
        volume = Volume.from_array(read_stack(input, channel=channel, as_stack=as_stack).data)
    warnings = fit_warnings(ckpt, images=sample_slices(volume))
    if warn is not None and distributed.is_main():
        for text in warnings:
            warn(text)
    if not distributed.is_main():
        progress = None
    summary = predict_volume(ckpt, volume, out, cfg=cfg, block=block, halo=halo, prob=prob, progress=progress)
    return {
        "input": str(input),
        **summary,
        "warnings": warnings,
        "checkpoint": checkpoint_facts(ckpt),
    }
