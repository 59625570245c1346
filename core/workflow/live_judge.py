"""A live round's prediction judged (issue 27 point 3): its foreground Dice on the strokes of the slice
it predicts, beside that of a fixed threshold of the raw slice (Otsu's, the foreground on the side the
strokes say). :mod:`core.workflow.live` says "not yet usable" when the threshold does as well.

Example:
    >>> import numpy as np
    >>> image = np.array([[10, 10, 200, 200]] * 4, np.uint8)
    >>> strokes = np.array([[1, 255, 255, 0]] * 4, np.uint8)   # 255: not labeled
    >>> foreground_above([image], [strokes])                    # the strokes say: dark is foreground
    False
    >>> judge(np.array([[1, 1, 1, 1]] * 4, np.uint8), image, strokes)["usable"]   # all foreground
    False
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data.masks import UNLABELED

__all__ = ["foreground_above", "threshold_baseline", "judge"]


def foreground_above(images: Any, strokes: Any) -> bool:
    """Is the foreground (class 1) the bright side of Otsu's threshold? Read from strokes: the side
    that agrees with more of the stroked pixels of ``images`` (slices, with their partial masks)."""
    from skimage.filters import threshold_otsu

    agree = total = 0
    for image, mask in zip(images, strokes):
        drawn = (mask != UNLABELED) & (mask <= 1)
        if drawn.any():
            above = np.asarray(image)[drawn] > threshold_otsu(np.asarray(image))
            agree += int((above == (mask[drawn] == 1)).sum())
            total += int(drawn.sum())
    return agree * 2 >= total


def threshold_baseline(image: np.ndarray, above: bool) -> np.ndarray:
    """A fixed threshold of the raw slice: Otsu's, foreground on the ``above`` (bright) side or below."""
    from skimage.filters import threshold_otsu

    image = np.asarray(image)
    fg = image > threshold_otsu(image)
    return fg if above else ~fg


def _dice(pred: np.ndarray, truth: np.ndarray) -> float:
    both = int(pred.sum()) + int(truth.sum())
    return 1.0 if both == 0 else 2.0 * int((pred & truth).sum()) / both


def judge(prediction: np.ndarray, image: np.ndarray, strokes: np.ndarray | None) -> dict[str, Any] | None:
    """The prediction of a slice against its strokes, beside the fixed threshold (two classes).

    Returns:
        ``{"model": Dice, "baseline": Dice, "pixels": n, "usable": bool}``, foreground Dice of each on
        the slice's stroked pixels; ``None`` when the slice has no stroke of both classes."""
    if strokes is None:
        return None
    drawn = (strokes != UNLABELED) & (strokes <= 1)
    truth = strokes[drawn] == 1
    if not truth.any() or truth.all():
        return None
    base = threshold_baseline(image, foreground_above([image], [strokes]))
    model, baseline = _dice(prediction[drawn] == 1, truth), _dice(base[drawn], truth)
    return {"model": model, "baseline": baseline, "pixels": int(drawn.sum()), "usable": model >= baseline}
