"""Data augmentation for training patches; one config for the Augment page preview and training.

:func:`augment_batch` works on torch tensors on the training device (GPU when there is one) with
random parameters drawn per sample; :func:`preview` wraps it numpy-in, numpy-out for the page.

Transforms, each applied to a sample with probability ``cfg.p`` when enabled:

- geometric, identical for image and mask: horizontal / vertical flip (``flips``), rotation by a
  multiple of 90 degrees (``rot90``; only 180 for non-square inputs), free rotation in
  ``[-rotate_deg, rotate_deg]``, zoom in by up to ``zoom`` (a random crop of ``1 - zoom`` of the side
  or more, resized back), elastic deformation (``elastic``: random displacements on a coarse 3x3
  grid, bicubically interpolated, as in Ronneberger et al. 2015; 1.0 means a standard deviation of
  3% of the patch side);
- photometric, image only: brightness shift in ``[-brightness, brightness]``, contrast factor in
  ``[1 - contrast, 1 + contrast]`` around the sample mean, gamma in ``[1/(1+gamma), 1+gamma]``,
  Gaussian noise of standard deviation ``noise_std``; results are clipped to [0, 1].

Flips and 90-degree rotations move pixels exactly. Free rotation, zoom and elastic deformation are
combined into one sampling grid, so an image is interpolated once (bilinear) and its mask once
(nearest, so labels stay labels); borders are filled by reflection. Photometric steps use
``kornia.enhance``. Parameters are drawn from ``generator`` (a CPU ``torch.Generator``), so a seeded
generator gives the same augmentations on any device; ``kornia.augmentation`` pipelines draw from
the global RNG instead, which would make seeded runs depend on everything else using it.

Example:
    >>> import numpy as np
    >>> cfg = AugmentConfig(rotate_deg=15, p=1.0)
    >>> out = preview(np.zeros((32, 32), np.float32), np.zeros((32, 32), np.uint8), cfg, n=2, seed=0)
    >>> len(out), out[0][0].shape, out[0][1].dtype
    (2, (32, 32), dtype('uint8'))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from ..data.records import Settings
from ..errors import SegDashError

__all__ = ["AugmentConfig", "augment_batch", "preview"]

_LIMITS = {  # field: (min, max)
    "rotate_deg": (0.0, 180.0),
    "elastic": (0.0, 1.0),
    "noise_std": (0.0, 1.0),
    "zoom": (0.0, 0.9),
    "brightness": (0.0, 1.0),
    "contrast": (0.0, 1.0),
    "gamma": (0.0, 1.0),
    "p": (0.0, 1.0),
}
_ELASTIC_SIGMA = 0.03  # displacement std as a fraction of the patch side, at elastic = 1.0


@dataclass(frozen=True)
class AugmentConfig(Settings):
    """Which augmentations to apply and how strongly.

    Args:
        flips: random horizontal and vertical flips.
        rot90: random rotation by 90, 180 or 270 degrees.
        rotate_deg: free rotation range in degrees (0 = off), at most 180.
        elastic: elastic deformation strength 0..1 (0 = off).
        noise_std: Gaussian noise standard deviation on the [0, 1] image (0 = off).
        zoom: maximal zoom-in fraction 0..0.9 (random resized crop; 0 = off).
        brightness: maximal brightness shift 0..1 (0 = off).
        contrast: maximal contrast change 0..1 (0 = off).
        gamma: gamma range 0..1: gamma in [1/(1+g), 1+g] (0 = off).
        p: probability with which each enabled transform is applied to a sample.
    """

    WHAT: ClassVar[str] = "augment"

    flips: bool = True
    rot90: bool = True
    rotate_deg: float = 0.0
    elastic: float = 0.0
    noise_std: float = 0.0
    zoom: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    gamma: float = 0.0
    p: float = 0.5

    def __post_init__(self) -> None:
        for name in ("flips", "rot90"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise SegDashError(f"augment {name} must be true or false, got {getattr(self, name)!r}")
            object.__setattr__(self, name, bool(getattr(self, name)))
        for name, (lo, hi) in _LIMITS.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= float(v) <= hi:
                raise SegDashError(f"augment {name} must be a number in {lo:g}..{hi:g}, got {v!r}")
            object.__setattr__(self, name, float(v))

    def describe(self) -> str:
        """Short human label, e.g. ``flips, 90° rotations (p = 0.5)``, or ``none``."""
        if not self.enabled():
            return "none"
        parts = [name for name, on in (("flips", self.flips), ("90° rotations", self.rot90)) if on]
        parts += [
            f"{label} {getattr(self, f):g}"
            for f, label in (
                ("rotate_deg", "rotation ±"),
                ("zoom", "zoom"),
                ("elastic", "elastic"),
                ("brightness", "brightness"),
                ("contrast", "contrast"),
                ("gamma", "gamma"),
                ("noise_std", "noise"),
            )
            if getattr(self, f) > 0
        ]
        return ", ".join(parts) + f" (p = {self.p:g})"

    def enabled(self) -> bool:
        """True when at least one transform is on and ``p > 0``."""
        return self.p > 0 and (self.flips or self.rot90 or self._warps() or self._photometric())

    def _warps(self) -> bool:
        return self.rotate_deg > 0 or self.zoom > 0 or self.elastic > 0

    def _photometric(self) -> bool:
        return self.brightness > 0 or self.contrast > 0 or self.gamma > 0 or self.noise_std > 0


def augment_batch(
    images: torch.Tensor, masks: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a batch of images and their masks with per-sample random parameters.

    Args:
        images: (N, C, H, W) float in [0, 1], on any device.
        masks: (N, H, W) integer class indices, same device.
        cfg: what to apply.
        generator: CPU generator for the random parameters; ``None`` uses torch's global RNG.

    Returns:
        ``(images, masks)`` of the same shapes, dtypes and device; inputs are not modified.

    Example:
        >>> x, m = torch.rand(2, 1, 16, 16), torch.zeros(2, 16, 16, dtype=torch.long)
        >>> y, n = augment_batch(x, m, AugmentConfig(), torch.Generator().manual_seed(0))
        >>> y.shape, n.dtype
        (torch.Size([2, 1, 16, 16]), torch.int64)
    """
    if (
        images.ndim != 4
        or masks.ndim != 3
        or images.shape[0] != masks.shape[0]
        or images.shape[-2:] != masks.shape[-2:]
    ):
        raise SegDashError(
            f"expected images (N, C, H, W) and masks (N, H, W) of the same N, H, W; got "
            f"{tuple(images.shape)} and {tuple(masks.shape)}"
        )
    if not cfg.enabled() or images.shape[0] == 0:
        return images, masks
    n, _, h, w = images.shape
    g = generator

    def chosen() -> torch.Tensor:
        return torch.rand(n, generator=g) < cfg.p

    if cfg.flips or cfg.rot90:
        hflip = chosen() if cfg.flips else torch.zeros(n, dtype=torch.bool)
        vflip = chosen() if cfg.flips else torch.zeros(n, dtype=torch.bool)
        k = torch.randint(1, 4, (n,), generator=g) * chosen() if cfg.rot90 else torch.zeros(n, dtype=torch.long)
        if h != w:
            k = torch.where(k % 2 == 1, torch.full_like(k, 2), k)  # 90/270 would change the shape
        images, masks = _dihedral(images, masks, hflip.tolist(), vflip.tolist(), k.tolist())
    if cfg._warps():
        images, masks = _warp(images, masks, cfg, g)
    if cfg._photometric():
        images = _photometric(images, cfg, g)
    return images, masks


def _dihedral(
    images: torch.Tensor, masks: torch.Tensor, hflip: list[bool], vflip: list[bool], k: list[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact flips and 90-degree rotations, per sample."""
    if not any(hflip) and not any(vflip) and not any(k):
        return images, masks
    out_i, out_m = [], []
    for i in range(images.shape[0]):
        x, m = images[i], masks[i]
        if hflip[i]:
            x, m = x.flip(-1), m.flip(-1)
        if vflip[i]:
            x, m = x.flip(-2), m.flip(-2)
        if k[i]:
            x, m = torch.rot90(x, k[i], dims=(-2, -1)), torch.rot90(m, k[i], dims=(-2, -1))
        out_i.append(x)
        out_m.append(m)
    return torch.stack(out_i), torch.stack(out_m)


def _warp(
    images: torch.Tensor, masks: torch.Tensor, cfg: AugmentConfig, g: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Free rotation + zoom + elastic deformation as one sampling grid, on the samples drawn."""
    n, _, h, w = images.shape
    rot = (torch.rand(n, generator=g) * 2 - 1) * cfg.rotate_deg * (torch.rand(n, generator=g) < cfg.p)
    scale = 1.0 - torch.rand(n, generator=g) * cfg.zoom * (torch.rand(n, generator=g) < cfg.p)
    shift = (torch.rand(n, 2, generator=g) * 2 - 1) * (1.0 - scale)[:, None]
    el_on = torch.rand(n, generator=g) < cfg.p
    coarse = torch.randn(n, 2, 3, 3, generator=g) * (cfg.elastic * _ELASTIC_SIGMA * min(h, w))
    coarse = coarse * el_on[:, None, None, None]
    todo = ((rot != 0) | (scale != 1) | (el_on & (cfg.elastic > 0))).nonzero().flatten()
    if todo.numel() == 0:
        return images, masks
    rad = rot[todo] * (math.pi / 180.0)
    c, s = torch.cos(rad), torch.sin(rad)
    sc = scale[todo]
    # output -> input map in normalised coordinates; the aspect terms keep the rotation rigid in pixels
    theta = torch.zeros(len(todo), 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = c * sc, -s * sc * h / w
    theta[:, 1, 0], theta[:, 1, 1] = s * sc * w / h, c * sc
    theta[:, :, 2] = shift[todo]
    dev = images.device
    grid = F.affine_grid(theta.to(dev), [len(todo), 1, h, w], align_corners=False)
    if cfg.elastic > 0:
        disp = coarse[todo] * torch.tensor([2.0 / w, 2.0 / h])[None, :, None, None]  # pixels -> normalised
        disp = F.interpolate(disp.to(dev), size=(h, w), mode="bicubic", align_corners=True)
        grid = grid + disp.permute(0, 2, 3, 1)
    idx = todo.to(dev)
    x = F.grid_sample(images[idx].float(), grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    m = F.grid_sample(masks[idx, None].float(), grid, mode="nearest", padding_mode="reflection", align_corners=False)
    images, masks = images.clone(), masks.clone()
    images[idx] = x.clamp_(0.0, 1.0).to(images.dtype)
    masks[idx] = m[:, 0].round().to(masks.dtype)
    return images, masks


def _photometric(images: torch.Tensor, cfg: AugmentConfig, g: torch.Generator | None) -> torch.Tensor:
    """Brightness, contrast, gamma and noise, per sample, image only."""
    import kornia.enhance as ke

    n = images.shape[0]
    dev = images.device
    x = images.float()

    def draw(amount: float) -> torch.Tensor:  # uniform in [-amount, amount] on the samples drawn, else 0
        v = (torch.rand(n, generator=g) * 2 - 1) * amount
        return (v * (torch.rand(n, generator=g) < cfg.p)).to(dev)

    if cfg.brightness > 0:
        x = ke.adjust_brightness(x, draw(cfg.brightness))
    if cfg.contrast > 0:
        factor = (1.0 + draw(cfg.contrast))[:, None, None, None]
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * factor + mean).clamp_(0.0, 1.0)
    if cfg.gamma > 0:
        x = ke.adjust_gamma(x, (1.0 + cfg.gamma) ** draw(1.0))
    if cfg.noise_std > 0:
        std = (cfg.noise_std * (torch.rand(n, generator=g) < cfg.p)).to(dev)
        if dev.type == "cpu":
            noise = torch.randn(x.shape, generator=g)
        else:  # draw the big tensor on its device, from a generator seeded by ours
            dg = torch.Generator(device=dev)
            dg.manual_seed(int(torch.randint(0, 2**62, (1,), generator=g)))
            noise = torch.randn(x.shape, generator=dg, device=dev)
        x = (x + noise * std[:, None, None, None]).clamp_(0.0, 1.0)
    return x.to(images.dtype)


def preview(
    image: np.ndarray, mask: np.ndarray, cfg: AugmentConfig, n: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` augmented versions of one image and its mask, as training would make them.

    Args:
        image: (Y, X) float image in [0, 1] (already normalised).
        mask: (Y, X) uint8 class indices.
        cfg: the augmentation config.
        n: how many versions.
        seed: random seed (same seed, same versions).

    Returns:
        list of ``n`` pairs ``(image (Y, X) float32, mask (Y, X) uint8)``.
    """
    image, mask = np.asarray(image), np.asarray(mask)
    if image.ndim != 2 or image.shape != mask.shape:
        raise SegDashError(
            f"preview needs a (Y, X) image and a mask of the same shape; got {image.shape} and {mask.shape}"
        )
    if n < 1:
        return []
    g = torch.Generator().manual_seed(int(seed))
    x = torch.from_numpy(image.astype(np.float32, copy=False))[None, None].expand(n, 1, *image.shape)
    m = torch.from_numpy(mask.astype(np.int64))[None].expand(n, *mask.shape)
    xs, ms = augment_batch(x.contiguous(), m.contiguous(), cfg, generator=g)
    return [(xs[i, 0].numpy().astype(np.float32), ms[i].numpy().astype(np.uint8)) for i in range(n)]
