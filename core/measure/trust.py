"""How far a model's objects can be trusted: its objects against human truth's, on held-out slices.

Objects are matched one to one as StarDist's ``matching`` does: the IoU of every truth / prediction
pair, then ``scipy.optimize.linear_sum_assignment`` maximizing the number of pairs with IoU >= the
threshold (0.5), ties broken by IoU; a matched pair is a true positive, an unmatched prediction a
false positive, an unmatched truth object a false negative. Besides detection (precision, recall,
F1), the figures a reviewer asks for: count error (%), mean-size bias (%), area-fraction bias (%),
and the Kolmogorov-Smirnov distance between the two size distributions (``scipy.stats.ks_2samp``).

Example:
    >>> import numpy as np
    >>> t = np.zeros((1, 8, 8), int); t[0, :4, :4] = 1; t[0, 5:, 5:] = 2
    >>> p = np.zeros((1, 8, 8), int); p[0, :4, :3] = 1
    >>> m = match_objects(t[0], p[0])
    >>> m["tp"], m["fp"], m["fn"]
    (1, 0, 1)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .tables import Measurement

__all__ = ["match_objects", "trust_figures", "trust_sentence"]


def match_objects(truth: np.ndarray, pred: np.ndarray, thresh: float = 0.5) -> dict[str, Any]:
    """One-to-one matching of the objects of two label images of the same shape (0: background).

    Returns ``tp, fp, fn, n_true, n_pred, mean_matched_iou``.
    """
    from scipy.optimize import linear_sum_assignment
    from skimage.segmentation import relabel_sequential

    t = relabel_sequential(np.asarray(truth))[0].ravel()
    p = relabel_sequential(np.asarray(pred))[0].ravel()
    nt, np_ = int(t.max()), int(p.max())
    out = {"tp": 0, "fp": np_, "fn": nt, "n_true": nt, "n_pred": np_, "mean_matched_iou": float("nan")}
    if nt == 0 or np_ == 0:
        return out
    both = (t > 0) & (p > 0)
    inter = np.bincount(t[both].astype(np.int64) * (np_ + 1) + p[both], minlength=(nt + 1) * (np_ + 1))
    inter = inter.reshape(nt + 1, np_ + 1)[1:, 1:].astype(np.float64)
    at = np.bincount(t, minlength=nt + 1)[1:].astype(np.float64)
    ap = np.bincount(p, minlength=np_ + 1)[1:].astype(np.float64)
    iou = inter / (at[:, None] + ap[None, :] - inter)
    n_min = min(nt, np_)
    cost = -(iou >= thresh).astype(np.float64) - iou / (2 * n_min)
    rows, cols = linear_sum_assignment(cost)
    hit = iou[rows, cols] >= thresh
    tp = int(hit.sum())
    out.update(tp=tp, fp=np_ - tp, fn=nt - tp)
    if tp:
        out["mean_matched_iou"] = float(iou[rows, cols][hit].mean())
    return out


def _pct(a: float, b: float) -> float | None:
    return None if not b else round(100.0 * (a - b) / b, 2)


def trust_figures(truth: Measurement, pred: Measurement, thresh: float = 0.5) -> list[dict[str, Any]]:
    """Per foreground class, the model's objects (``pred``) against the truth's, both measured on the
    same slices in the same mode: detection at IoU ``thresh`` and the biases of what it measures."""
    from scipy.stats import ks_2samp

    if list(truth.zs) != list(pred.zs) or truth.labels.shape != pred.labels.shape:
        raise ValueError("truth and prediction must be measured on the same slices")
    size = "volume" if truth.mode == "3d" else "area"
    rows = []
    for _, d in truth.dataset.iterrows():
        k = int(d["class"])
        tobj = truth.objects[truth.objects["class"] == k] if len(truth.objects) else truth.objects
        pobj = pred.objects[pred.objects["class"] == k] if len(pred.objects) else pred.objects
        tl = _class_labels(truth, tobj)
        pl = _class_labels(pred, pobj)
        units = [(tl, pl)] if truth.mode == "3d" else [(tl[i], pl[i]) for i in range(tl.shape[0])]
        tally = pd.DataFrame([match_objects(a, b, thresh) for a, b in units])
        tp, fp, fn = (int(tally[c].sum()) for c in ("tp", "fp", "fn"))
        n_true, n_pred = len(tobj), len(pobj)
        precision = tp / (tp + fp) if tp + fp else float("nan")
        recall = tp / (tp + fn) if tp + fn else float("nan")
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
        ts = tobj[size].to_numpy(float) if n_true else np.zeros(0)
        ps = pobj[size].to_numpy(float) if n_pred else np.zeros(0)
        pf = pred.dataset.loc[pred.dataset["class"] == k, "area_fraction"]
        ks = ks_2samp(ps, ts) if len(ts) and len(ps) else None
        rows.append(
            {
                "class": k,
                "class_name": str(d["class_name"]),
                "slices": len(truth.zs),
                "iou_threshold": thresh,
                "n_true": n_true,
                "n_pred": n_pred,
                "tp": tp,
                "fp": fp,
                "fn": fn,
                "precision": _round(precision),
                "recall": _round(recall),
                "f1": _round(f1),
                "count_error_pct": _pct(n_pred, n_true),
                "mean_size_true_px": _round(ts.mean()) if len(ts) else None,
                "mean_size_pred_px": _round(ps.mean()) if len(ps) else None,
                "size_bias_pct": _pct(ps.mean(), ts.mean()) if len(ts) and len(ps) else None,
                "area_fraction_bias_pct": _pct(float(pf.iloc[0]), float(d["area_fraction"])) if len(pf) else None,
                "ks_distance": _round(ks.statistic) if ks is not None else None,
                "ks_pvalue": _round(ks.pvalue) if ks is not None else None,
            }
        )
    return rows


def _round(v: float, n: int = 4) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else round(float(v), n)


def _class_labels(m: Measurement, objs: pd.DataFrame) -> np.ndarray:
    """``m.labels`` with only the objects in ``objs`` (one class's), others 0."""
    if not len(objs):
        return np.zeros(m.labels.shape, np.uint32)
    keep = np.zeros(int(m.labels.max()) + 1, bool)
    keep[objs["label"].to_numpy(np.int64)] = True
    return np.where(keep[m.labels], m.labels, 0)


def trust_sentence(rows: list[dict[str, Any]], part: str = "held-out") -> str:
    """The figures in words: "On 35 held-out slices the model counts 4 % too few mito (...)"."""
    out = []
    for r in rows:
        ce, sb = r["count_error_pct"], r["size_bias_pct"]
        if ce is None:
            out.append(f"On {r['slices']} {part} slices the truth has no {r['class_name']} objects to compare with.")
            continue
        count = f"{abs(ce):.0f} % too {'many' if ce > 0 else 'few'}" if round(ce) else "the right number of"
        size = "" if sb is None else f", sizes {abs(sb):.0f} % {'larger' if sb > 0 else 'smaller'} on average"
        f1 = "n/a" if r["f1"] is None else f"{r['f1']:.2f}"
        out.append(
            f"On {r['slices']} {part} slices the model counts {count} {r['class_name']} objects "
            f"({r['n_pred']} vs {r['n_true']}){size}; detection F1 {f1} at IoU {r['iou_threshold']:g} "
            f"(precision {r['precision']}, recall {r['recall']}), size distributions KS {r['ks_distance']}."
        )
    return " ".join(out)
