"""3D objects of a volume too large for memory: labeled a block of slices at a time, objects that
cross from one block into the next merged, measured from sums that add up over blocks.

Each block of ``block`` slices is labeled with ``scipy.ndimage.label`` (the 3D structure of the chosen
connectivity); its objects get global numbers, and their voxel count, centroid, bounding box and
intensity sums, minimum and maximum are taken with ``scipy.ndimage``. Where a block's last slice
touches the next block's first, the pairs of objects that are neighbours under the same structure
are joined (``scipy.sparse.csgraph.connected_components``), and the rows of each joined object are
summed. Memory: a block of masks, labels and image, and a few numbers per object, whatever the depth.

What needs an object whole is not measured this way: surface, axes, sphericity and solidity are
left empty (measure in memory for them).

Example:
    >>> import numpy as np
    >>> m = np.zeros((6, 8, 8), np.uint8); m[1:5, 2:4, 2:4] = 1
    >>> df = objects_3d_blocks(m, None, 1, block=2)
    >>> len(df), int(df["volume"].iloc[0]), (int(df["z_first"].iloc[0]), int(df["z_last"].iloc[0]))
    (1, 16, (1, 4))
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from .objects import structure

__all__ = ["objects_3d_blocks"]


def _block_rows(lab: np.ndarray, n: int, img: np.ndarray | None, z0: int, offset: int) -> pd.DataFrame:
    index = np.arange(1, n + 1)
    count = np.bincount(lab.ravel(), minlength=n + 1)[1:].astype(np.float64)
    centre = np.asarray(ndi.center_of_mass(np.ones(lab.shape, np.uint8), lab, index), np.float64).reshape(-1, 3)
    boxes = ndi.find_objects(lab, n)
    rows: dict[str, Any] = {
        "label": index + offset,
        "n": count,
        "sz": (centre[:, 0] + z0) * count,
        "sy": centre[:, 1] * count,
        "sx": centre[:, 2] * count,
        "z_first": [b[0].start + z0 for b in boxes],
        "z_last": [b[0].stop - 1 + z0 for b in boxes],
        "bbox_y0": [b[1].start for b in boxes],
        "bbox_x0": [b[2].start for b in boxes],
        "bbox_y1": [b[1].stop for b in boxes],
        "bbox_x1": [b[2].stop for b in boxes],
    }
    if img is not None:
        f = img.astype(np.float64)
        rows["si"] = ndi.sum_labels(f, lab, index)
        rows["sii"] = ndi.sum_labels(f * f, lab, index)
        rows["intensity_min"] = ndi.minimum(f, lab, index)
        rows["intensity_max"] = ndi.maximum(f, lab, index)
    return pd.DataFrame(rows)


def _face_pairs(prev: np.ndarray, cur: np.ndarray, plane: np.ndarray) -> np.ndarray:
    """Pairs (label in ``prev``, label in ``cur``) that touch across the face, for the in-plane
    offsets ``plane`` (the 3 x 3 slice of the structure one step in z)."""
    h, w = prev.shape
    pairs = []
    for dy, dx in np.argwhere(plane) - 1:
        a = prev[max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
        b = cur[max(0, dy) : h - max(0, -dy), max(0, dx) : w - max(0, -dx)]
        both = (a > 0) & (b > 0)
        if both.any():
            pairs.append(np.stack([a[both], b[both]], axis=1))
    return np.unique(np.concatenate(pairs), axis=0) if pairs else np.zeros((0, 2), np.int64)


def objects_3d_blocks(
    masks: Any, image: Any, k: int, *, block: int = 32, connectivity: int | None = None, z_step: float = 1.0
) -> pd.DataFrame:
    """3D objects of class ``k`` of ``masks`` (anything giving a (Y, X) slice for ``[i]``), ``block``
    slices at a time; columns as :func:`~core.measure.props.measure_3d` gives them, less those that
    need the object whole. ``label`` numbers the objects 1..N (no label image is kept)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n, h, w = masks.shape
    s = structure("3d", connectivity)
    frames, pairs, offset, prev = [], [], 0, None
    for z0 in range(0, n, max(1, int(block))):
        z1 = min(n, z0 + int(block))
        b = np.stack([np.asarray(masks[i]) == k for i in range(z0, z1)])
        lab, m = ndi.label(b, structure=s)
        del b
        img = None if image is None else np.stack([np.asarray(image[i]) for i in range(z0, z1)])
        if m:
            frames.append(_block_rows(lab, m, img, z0, offset))
        glob = np.where(lab > 0, lab + offset, 0)
        if prev is not None:
            pairs.append(_face_pairs(prev, glob[0], s[0]))
        prev = glob[-1].copy()
        offset += m
        del lab, glob, img
    if not frames:
        return pd.DataFrame()
    rows = pd.concat(frames, ignore_index=True)
    edges = np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(offset + 1, offset + 1))
    _, comp = connected_components(graph, directed=False)
    rows["obj"] = comp[rows["label"].to_numpy()]
    agg = {"n": "sum", "sz": "sum", "sy": "sum", "sx": "sum", "z_first": "min", "z_last": "max"}
    agg.update({"bbox_y0": "min", "bbox_x0": "min", "bbox_y1": "max", "bbox_x1": "max"})
    if image is not None:
        agg.update({"si": "sum", "sii": "sum", "intensity_min": "min", "intensity_max": "max"})
    g = rows.groupby("obj", sort=True).agg(agg).reset_index(drop=True)
    out = pd.DataFrame({"label": np.arange(1, len(g) + 1)})
    out["z"] = np.round(g["sz"] / g["n"]).astype(int)
    out["volume"] = g["n"] * z_step
    out["equivalent_diameter"] = (6 * out["volume"] / math.pi) ** (1 / 3)
    for c in ("major_axis", "minor_axis", "surface", "solidity", "aspect_ratio", "sphericity"):
        out[c] = np.nan
    out["centroid_z"], out["centroid_y"], out["centroid_x"] = g["sz"] / g["n"], g["sy"] / g["n"], g["sx"] / g["n"]
    for c in ("z_first", "z_last", "bbox_y0", "bbox_x0", "bbox_y1", "bbox_x1"):
        out[c] = g[c].to_numpy()
    if image is not None:
        mean = g["si"] / g["n"]
        out["intensity_mean"], out["intensity_min"], out["intensity_max"] = mean, g["intensity_min"], g["intensity_max"]
        out["intensity_std"] = np.sqrt(np.maximum(0.0, g["sii"] / g["n"] - mean**2))
    out["border"] = (out["bbox_y0"] == 0) | (out["bbox_x0"] == 0) | (out["bbox_y1"] == h) | (out["bbox_x1"] == w)
    out["border"] |= (out["z_first"] == 0) | (out["z_last"] == n - 1)
    return out
