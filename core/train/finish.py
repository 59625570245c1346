"""The end of a run: the decision tuned on the validation slices, and the test slices scored.

:func:`finish_run` takes the run's best checkpoint (else its last), predicts the validation slices
whole (one forward each, as the test slices; the epochs' validation scored their centre crops
only, ``val_crop``, and a crop is not the slice: measured on EPFL, benchmarks/README.md), tunes the
:class:`~core.nn.decision.Decision`
on them (:func:`~core.nn.decision.tune_decision`; with partial labels, each class weighed to its
share of the slices estimated by :func:`~core.nn.decision.estimate_priors`, since strokes hold the
classes in the shares they were drawn) and stores it in ``best.pt`` and ``last.pt``, so
prediction uses it by default. Then it predicts the labeled test slices whole (they were never
trained nor validated on) and scores them with that decision. The scores say how the model does on
slices it has never seen; the validation scores, being what chose the checkpoint and the decision,
are a little optimistic, and the test ones are the honest number.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..data.files import atomic_write
from ..nn.checkpoint import load_checkpoint
from ..nn.decision import Decision, apply_decision, estimate_priors, tune_decision
from ..nn.device import uses_channels_last
from ..nn.metrics import confusion_matrix, scores_from_confusion
from ..nn.model import probabilities, required_multiple
from .data import validation_tensors
from .loop import autocast

__all__ = ["finish_run", "slice_probabilities", "TEST_CROP"]

#: Test slices are scored whole up to this side (larger ones centre-cropped to it, to bound memory).
TEST_CROP = 2048


def slice_probabilities(
    model: torch.nn.Module,
    items: Sequence[tuple[torch.Tensor, torch.Tensor]],
    n_classes: int,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    check_stop: Callable[[], None] | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(probabilities (K, H, W) float32, truth (H, W))`` per item of
    :func:`~core.train.data.validation_tensors`, one forward pass each."""
    model.eval()
    out = []
    with torch.inference_mode():
        for img, mask in items:
            if check_stop is not None:
                check_stop()
            x = img.to(device)
            if uses_channels_last(device):
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(device, amp_dtype):
                logits = model(x)
            h, w = mask.shape[-2:]
            p = probabilities(logits[..., :h, :w].float(), n_classes)[0].cpu().numpy()
            out.append((p, mask[0].numpy()))
    return out


def _store_decision(path: Path, decision: Decision) -> None:
    """Rewrite checkpoint ``path`` with ``decision`` (atomic; read with ``weights_only``)."""
    obj = torch.load(path, map_location="cpu", weights_only=True)
    obj["decision"] = decision.to_dict()
    atomic_write(path, lambda fh: torch.save(obj, fh))


def _scores(preds: Sequence[tuple[np.ndarray, np.ndarray]], decision: Decision, k: int) -> dict[str, Any]:
    cm = sum(confusion_matrix(apply_decision(p, decision), t, k) for p, t in preds)
    s = scores_from_confusion(cm)
    return {
        key: s[key] for key in ("pixel_error", "mean_dice", "mean_iou", "dice", "iou", "dice_fg", "iou_fg") if key in s
    }


def finish_run(
    checkpoints: Sequence[Path],
    cfg: Any,
    val_slices: tuple[list[np.ndarray], list[np.ndarray]],
    test_slices: tuple[list[np.ndarray], list[np.ndarray]],
    window: tuple[float, float],
    n_classes: int,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    check_stop: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Tune the decision on validation, store it, score the test slices.

    Args:
        checkpoints: the run's checkpoint files, the one to use first (``best.pt``, ``last.pt``);
            missing ones are skipped; the decision goes into each.
        cfg: the run's :class:`~core.train.config.TrainConfig` (``tune``: whether to tune).
        val_slices: ``(images, masks)`` of the validation slices ((Y, X) or (C, Y, X) each).
        test_slices: ``(images, masks)`` of the labeled test slices, the same way.
        window: normalisation window.
        n_classes: classes.
        device, amp_dtype: where and how to run the network.
        check_stop: raises :class:`~core.train.events.Stopped` to stop.

    Returns:
        ``{"decision": {...}, "val": scores, "val_default": scores, "test": scores,
        "test_default": scores, "n_test": n}`` (``class_priors`` too when the validation labels are
        partial; ``test*`` only with test slices); scores as
        :func:`~core.nn.metrics.scores_from_confusion` (``*_default``: threshold 0.5, no cleanup).
    """
    paths = [Path(p) for p in checkpoints if p and Path(p).is_file()]
    if not paths:
        return {}
    ckpt = load_checkpoint(paths[0], device=device)
    mult = required_multiple(ckpt.model_config)

    def predict(slices: tuple[list[np.ndarray], list[np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
        items = validation_tensors(slices[0], slices[1], window, mult, TEST_CROP)
        return slice_probabilities(ckpt.model, items, n_classes, device, amp_dtype, check_stop)

    val = predict(val_slices) if val_slices[0] else []
    decision, priors = Decision(), None
    if cfg.tune and val:
        probs, truths = [p for p, _ in val], [t for _, t in val]
        priors = estimate_priors(probs, truths, n_classes)  # partial labels: the strokes' shares are not the slices'
        decision, _ = tune_decision(probs, truths, n_classes, priors=priors)
    for path in dict.fromkeys(paths):
        _store_decision(path, decision)
    out: dict[str, Any] = {
        "decision": decision.to_dict(),
        "checkpoint": paths[0].name,
        "val": _scores(val, decision, n_classes),
        "val_default": _scores(val, Decision(), n_classes),
    }
    if priors is not None:
        out["class_priors"] = [round(float(v), 4) for v in priors]
    images, masks = test_slices
    if images:
        test = predict(test_slices)
        out.update(test=_scores(test, decision, n_classes), test_default=_scores(test, Decision(), n_classes))
        out["n_test"] = len(images)
    return out
