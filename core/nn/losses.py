"""The training loss: smp's losses behind one call, binary or multi-class, not-labeled pixels ignored,
optional border weights and deep supervision. :func:`core.train.loop.build_training` builds it from
the config's ``loss`` and ``edge_weight``.

One table names the losses (as smp's own registries do): :data:`LOSS_PARTS`, a part's name -> the
factory of its smp loss, and :data:`LOSS_LABELS`, the names a run may use (parts, or parts joined by
``+``) -> their words. :class:`~core.train.config.TrainConfig` accepts exactly :data:`LOSSES` and
the Train page offers them with their labels; :class:`Loss` builds each part from the table.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..data.masks import UNLABELED
from ..errors import SegDashError

__all__ = ["Loss", "EDGE_RADIUS", "LOSS_PARTS", "LOSS_LABELS", "LOSSES"]

#: :class:`Loss`'s ``edge_weight`` weighs pixels within this many pixels of another class.
EDGE_RADIUS = 2


def _bce(binary: bool) -> nn.Module:
    from segmentation_models_pytorch import losses as L  # imported when a loss is built: it loads timm

    if binary:  # summed: Loss divides it by the labeled pixels
        return L.SoftBCEWithLogitsLoss(ignore_index=UNLABELED, reduction="sum")
    return nn.CrossEntropyLoss(ignore_index=UNLABELED)


def _smp(name: str) -> Callable[[bool], nn.Module]:
    def make(binary: bool) -> nn.Module:
        from segmentation_models_pytorch import losses as L

        mode = "binary" if binary else "multiclass"
        if name == "focal":
            return L.FocalLoss(mode, ignore_index=UNLABELED)
        cls = {"dice": L.DiceLoss, "jaccard": L.JaccardLoss}[name]
        return cls(mode, from_logits=True, ignore_index=UNLABELED)

    return make


#: a part's name -> its factory (``binary`` -> the loss module, not-labeled pixels ignored)
LOSS_PARTS: dict[str, Callable[[bool], nn.Module]] = {
    "bce": _bce,
    "dice": _smp("dice"),
    "jaccard": _smp("jaccard"),
    "focal": _smp("focal"),
}
#: the losses a run may name -> their words (the Train page's choices, in this order)
LOSS_LABELS: dict[str, str] = {
    "bce": "cross-entropy (BCE)",
    "dice": "Dice",
    "jaccard": "Jaccard (IoU)",
    "focal": "focal",
    "bce+dice": "BCE + Dice (recommended)",
}
LOSSES = tuple(LOSS_LABELS)


class Loss(nn.Module):
    """smp losses behind one call: ``loss(logits, target (N, H, W) long)``, binary or multi-class.

    Pixels whose target is :data:`~core.data.masks.UNLABELED` (not labeled: strokes instead of a
    complete mask) take no part: every loss gets it as its ``ignore_index``. The binary BCE, which
    zeroes ignored pixels but averages over all, is summed and divided by the labeled pixels, so it
    keeps its weight beside Dice however few pixels are labeled (the mean, for complete masks).

    ``edge_weight`` > 0 weighs the cross-entropy (``bce``) of labeled pixels within
    :data:`EDGE_RADIUS` pixels of another class's labeled pixel by ``1 + edge_weight`` (a weighted
    mean: the term keeps its scale beside Dice), after the U-Net paper's border weights: thin
    structures (membranes) and small objects are mostly such pixels. Losses without ``bce`` are
    not weighed.

    ``logits`` may be a deep-supervised network's ``(logits, [coarser logits, ...])`` (coarsest
    first, each level half the size of the next): each is upsampled to the target and its loss
    weighed by half the next one's, the output's by 1, and the sum divided by the weights' sum.
    """

    def __init__(self, name: str, n_classes: int, edge_weight: float = 0.0):
        super().__init__()
        self.binary = n_classes == 2
        self.n_classes = n_classes
        self.edge_weight = float(edge_weight)
        self.parts = nn.ModuleList()
        self.kinds: list[str] = []
        for part in name.split("+"):
            if part not in LOSS_PARTS:
                raise SegDashError(f"unknown loss {part!r}")
            self.parts.append(LOSS_PARTS[part](self.binary))
            self.kinds.append(part)

    def edge_weights(self, target: torch.Tensor) -> torch.Tensor:
        """(N, H, W) float pixel weights: ``1 + edge_weight`` near a class boundary, else 1; 0 where
        not labeled."""
        k = 2 * EDGE_RADIUS + 1
        near = torch.zeros(target.shape, dtype=torch.int32, device=target.device)
        for c in range(self.n_classes):
            hit = (target == c).float()[:, None]
            near += (nn.functional.max_pool2d(hit, k, stride=1, padding=EDGE_RADIUS)[:, 0] > 0).int()
        w = 1.0 + self.edge_weight * (near >= 2).float()
        return w * (target != UNLABELED).float()

    def _weighted_ce(self, logits: torch.Tensor, target: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        f = nn.functional
        if self.binary:
            t = (target == 1).float()
            per_pixel = f.binary_cross_entropy_with_logits(logits[:, 0], t, reduction="none")
        else:
            per_pixel = f.cross_entropy(logits, target, ignore_index=UNLABELED, reduction="none")
        return (per_pixel * w).sum() / w.sum()

    def _one(
        self, logits: torch.Tensor, target: torch.Tensor, n_labeled: torch.Tensor, w: torch.Tensor | None
    ) -> torch.Tensor:
        """The loss of one output (upsampled to the target when coarser); ``w``: the edge weights."""
        if logits.shape[-2:] != target.shape[-2:]:
            logits = nn.functional.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
        t = target[:, None].float() if self.binary else target
        total = logits.new_zeros(())
        for part, kind in zip(self.parts, self.kinds):
            if kind == "bce" and w is not None:
                total = total + self._weighted_ce(logits, target, w)
            elif kind == "bce" and self.binary:  # summed: divided by the labeled pixels
                total = total + part(logits, t) / n_labeled
            else:
                total = total + part(logits, t)
        return total

    def forward(
        self, logits: torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]], target: torch.Tensor
    ) -> torch.Tensor:
        main, aux = logits if isinstance(logits, tuple) else (logits, [])
        main = main.float()
        n_labeled = (target != UNLABELED).sum()
        if not n_labeled:  # nothing labeled in the batch: no loss, no gradient (CE would give NaN)
            return main.sum() * 0.0 + sum(a.float().sum() * 0.0 for a in aux)
        w = self.edge_weights(target) if self.edge_weight and "bce" in self.kinds else None  # once for every output
        weights = [0.5 ** (len(aux) - i) for i in range(len(aux))] + [1.0]
        outputs = [a.float() for a in aux] + [main]
        return sum(wt * self._one(o, target, n_labeled, w) for wt, o in zip(weights, outputs)) / sum(weights)
