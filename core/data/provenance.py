"""Per-pixel provenance of a mask: where each labeled pixel's class came from.

A provenance map is a (Y, X) uint8 array of codes, stored beside its mask version
(``masks/<z>.v<n>.src.png``, :func:`core.store.layout.provenance_file`):

- :data:`NONE` (0): not labeled;
- :data:`DRAWN` (1): drawn by a person on the Label page (or saved whole by one);
- :data:`IMPORTED` (2): came with the imported masks;
- :data:`ACCEPTED` (3): accepted from a model's prediction; which run is the version's ``accepted_from``.

A version saved whole (an import, an accepted prediction) has one provenance for all its labeled
pixels, derived from its source (:func:`from_source`) without a file; strokes on top of a version
write a file. Error maps and scores of a prediction count only what a person drew or imported
(:func:`person_labeled`).

Example:
    >>> import numpy as np
    >>> mask = np.array([[0, 1], [255, 1]], np.uint8)
    >>> from_source("accepted:run-3", mask).tolist()
    [[3, 3], [0, 3]]
    >>> person_labeled(mask, np.array([[1, 3], [0, 2]], np.uint8)).tolist()
    [[0, 255], [255, 1]]
"""

from __future__ import annotations

import numpy as np

from .masks import UNLABELED

__all__ = ["NONE", "DRAWN", "IMPORTED", "ACCEPTED", "NAMES", "from_source", "accepted_run", "stroke", "person_labeled"]

NONE, DRAWN, IMPORTED, ACCEPTED = 0, 1, 2, 3
NAMES = {NONE: "not labeled", DRAWN: "drawn", IMPORTED: "imported", ACCEPTED: "accepted from a model"}
COLORS = {DRAWN: (60, 220, 90), IMPORTED: (0, 170, 255), ACCEPTED: (255, 140, 0)}


def _code(source: str) -> int:
    kind = source.partition(":")[0]
    return {"imported": IMPORTED, "accepted": ACCEPTED, "model": ACCEPTED}.get(kind, DRAWN)


def from_source(source: str, mask: np.ndarray) -> np.ndarray:
    """The provenance of a version saved whole from ``source`` (``imported``, ``drawn``,
    ``accepted:<run>``, ``model:<what>``): its code on every labeled pixel of ``mask``."""
    mask = np.asarray(mask)
    return np.where(mask == UNLABELED, NONE, _code(source)).astype(np.uint8)


def accepted_run(source: str) -> str:
    """The run a source accepted a prediction from (``accepted:<run>``, ``model:model of run <run>``,
    ``model:stored prediction <run>``), or ``""``."""
    kind, _, what = source.partition(":")
    if kind == "accepted":
        return what
    return what.split()[-1] if kind == "model" and what.strip() else ""


def stroke(provenance: np.ndarray, new_mask: np.ndarray, drawn: np.ndarray) -> np.ndarray:
    """Provenance after strokes: pixels of ``drawn`` become :data:`DRAWN` (or :data:`NONE` where the
    new mask is not labeled, the scribble eraser); the others keep theirs."""
    new_mask = np.asarray(new_mask)
    out = np.where(drawn, DRAWN, provenance).astype(np.uint8)
    out[(out == NONE) & (new_mask != UNLABELED)] = DRAWN  # a complete mask started under the strokes
    out[new_mask == UNLABELED] = NONE
    return out


def person_labeled(mask: np.ndarray, provenance: np.ndarray) -> np.ndarray:
    """``mask`` with every pixel a person did not draw or import set to not labeled: the truth an error
    map or a score may count (a prediction accepted from a model is no truth about that model)."""
    keep = (provenance == DRAWN) | (provenance == IMPORTED)
    return np.where(keep, mask, UNLABELED).astype(np.uint8)
