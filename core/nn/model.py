"""Segmentation networks: one frozen config, one factory.

:class:`ModelConfig` says which network to build; :func:`build_model` builds it, with
``segmentation_models_pytorch.create_model`` for the smp architectures and :class:`ClassicUNet`
(the original Ronneberger et al. 2015 layout) for ``"classic"``.

Output convention (used by training, metrics and inference alike):

- ``n_classes == 2`` (binary): the network has **one** output channel (logit of class 1), trained
  with a sigmoid; class 1 is the foreground.
- ``n_classes > 2``: ``n_classes`` output channels, trained with a softmax.

:func:`probabilities` turns either kind of logits into ``(N, K, H, W)`` class probabilities and
:func:`labels_from_logits` into ``(N, H, W)`` class indices, so callers never branch on the head.

Example:
    >>> cfg = ModelConfig(arch="classic", classic_width=4)
    >>> model = build_model(cfg)
    >>> logits = model(torch.zeros(1, 1, 32, 32))
    >>> tuple(logits.shape), tuple(probabilities(logits, cfg.n_classes).shape)
    ((1, 1, 32, 32), (1, 2, 32, 32))
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlparse

import torch
from torch import nn

from ..data.records import Settings
from ..errors import SegDashError

__all__ = [
    "ARCHITECTURES",
    "ENCODERS",
    "ENCODER_WEIGHTS",
    "ModelConfig",
    "ClassicUNet",
    "build_model",
    "probabilities",
    "labels_from_logits",
    "required_multiple",
    "count_parameters",
]

ARCHITECTURES = ("Unet", "UnetPlusPlus", "FPN", "DeepLabV3Plus", "classic")
ENCODERS = ("resnet18", "resnet34", "efficientnet-b0", "mobilenet_v2")
ENCODER_WEIGHTS = (None, "imagenet")
ATTENTIONS = (None, "scse")  # smp's decoder attention (Roy et al. 2018), Unet and UnetPlusPlus only

_DOWNLOAD_TIMEOUT_S = 120.0  # whole pretrained-weights download, once the host answered
_CONNECT_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class ModelConfig(Settings):
    """Which network to build.

    Args:
        arch: one of :data:`ARCHITECTURES` (case-insensitive on input, stored canonical).
        encoder: smp encoder, one of :data:`ENCODERS` (ignored by ``"classic"``).
        encoder_weights: ``None`` (random init) or ``"imagenet"`` (downloaded once, then cached).
        in_channels: image channels (1 for grayscale stacks).
        n_classes: classes in the data, at least 2. 2 gives a binary head (1 output channel +
            sigmoid); K > 2 gives K channels + softmax.
        classic_width: base width of the classic U-Net (64 as in the paper; 16 is a reduced one).
        encoder_depth: smp encoder stages, 3..5; fewer stages make a smaller, faster network
            (``DeepLabV3Plus`` needs 5).
        attention: ``None`` or ``"scse"``: spatial and channel squeeze-and-excitation in each
            decoder block (smp's ``decoder_attention_type``; ``Unet`` and ``UnetPlusPlus`` only).
        deep_supervision: the classic U-Net also predicts from its decoder's 1/4 and 1/2 levels
            while training, and the loss takes them in (weights 1/4 and 1/2 of the output's, as
            nnU-Net); prediction uses the output alone. ``classic`` only.

    Example:
        >>> ModelConfig.from_dict({"arch": "unet"}).arch
        'Unet'
        >>> ModelConfig(n_classes=3).out_channels
        3
    """

    WHAT: ClassVar[str] = "model"

    arch: str = "Unet"
    encoder: str = "resnet18"
    encoder_weights: str | None = None
    in_channels: int = 1
    n_classes: int = 2
    classic_width: int = 64
    encoder_depth: int = 5
    attention: str | None = None
    deep_supervision: bool = False

    def __post_init__(self) -> None:
        arch = _canonical(self.arch, ARCHITECTURES, "arch")
        object.__setattr__(self, "arch", arch)
        if arch != "classic":
            object.__setattr__(self, "encoder", _canonical(self.encoder, ENCODERS, "encoder"))
        if self.encoder_weights not in ENCODER_WEIGHTS:
            raise SegDashError(f"encoder_weights must be None or 'imagenet', got {self.encoder_weights!r}")
        if arch == "classic" and self.encoder_weights is not None:
            raise SegDashError("the classic U-Net has no pretrained encoder; use encoder_weights=None")
        _check_int(self.in_channels, "in_channels", 1, 64)
        _check_int(self.n_classes, "n_classes", 2, 255)
        _check_int(self.classic_width, "classic_width", 2, 256)
        _check_int(self.encoder_depth, "encoder_depth", 3, 5)
        if arch == "DeepLabV3Plus" and self.encoder_depth != 5:
            raise SegDashError("DeepLabV3Plus needs encoder_depth=5")
        if self.attention not in ATTENTIONS:
            raise SegDashError(f"attention must be None or 'scse', got {self.attention!r}")
        if self.attention and arch not in ("Unet", "UnetPlusPlus"):
            raise SegDashError(f"attention {self.attention!r} needs arch Unet or UnetPlusPlus, not {arch}")
        if not isinstance(self.deep_supervision, bool):
            raise SegDashError(f"deep_supervision must be true or false, got {self.deep_supervision!r}")
        if self.deep_supervision and arch != "classic":
            raise SegDashError(f"deep_supervision needs arch classic, not {arch}")

    @property
    def out_channels(self) -> int:
        """Output channels of the network: 1 for binary, else ``n_classes``."""
        return 1 if self.n_classes == 2 else self.n_classes

    @property
    def binary(self) -> bool:
        return self.n_classes == 2

    def describe(self) -> str:
        """Short human label, e.g. ``Unet / resnet18`` or ``classic U-Net (width 64)``."""
        if self.arch == "classic":
            deep = ", deep supervision" if self.deep_supervision else ""
            return f"classic U-Net (width {self.classic_width}{deep})"
        depth = "" if self.encoder_depth == 5 else f", depth {self.encoder_depth}"
        weights = ", imagenet" if self.encoder_weights else ""
        attention = f", {self.attention}" if self.attention else ""
        return f"{self.arch} / {self.encoder}{depth}{weights}{attention}"


def _canonical(value: Any, choices: tuple[str, ...], what: str) -> str:
    if isinstance(value, str):
        for c in choices:
            if c.lower() == value.lower():
                return c
    raise SegDashError(f"{what} must be one of {', '.join(choices)}; got {value!r}")


def _check_int(value: Any, what: str, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise SegDashError(f"{what} must be an integer in {lo}..{hi}, got {value!r}")


# -- the classic U-Net -------------------------------------------------------------------------


class _DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class ClassicUNet(nn.Module):
    """The U-Net of Ronneberger et al. (2015) with 'same' padding and batch norm.

    Five levels of widths ``w, 2w, 4w, 8w, 16w``; each level two 3x3 conv + BN + ReLU; 2x2 max-pool
    down, 2x2 transposed conv up, skip connections by concatenation, 1x1 conv head. Padded convs
    keep the output the size of the input, which must be a multiple of 16.

    Args:
        in_channels: input channels.
        out_channels: output channels (logits).
        width: base width ``w`` (64 in the paper).
        deep_supervision: 1x1 heads on the decoder's 1/4 and 1/2 levels too; in training mode
            the forward then returns ``(logits, [logits at 1/4, logits at 1/2])`` (see
            :func:`core.train.loop.Loss`), in eval mode the logits alone.

    Shape:
        x: (N, in_channels, H, W), H and W multiples of 16 -> (N, out_channels, H, W)
    """

    levels = 5

    def __init__(self, in_channels: int = 1, out_channels: int = 1, width: int = 64, deep_supervision: bool = False):
        super().__init__()
        widths = [width * 2**i for i in range(self.levels)]
        self.down = nn.ModuleList()
        cin = in_channels
        for w in widths:
            self.down.append(_DoubleConv(cin, w))
            cin = w
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList()
        self.up_conv = nn.ModuleList()
        for w_low, w in zip(widths[:0:-1], widths[-2::-1]):
            self.up.append(nn.ConvTranspose2d(w_low, w, 2, stride=2))
            self.up_conv.append(_DoubleConv(2 * w, w))
        self.head = nn.Conv2d(widths[0], out_channels, 1)
        # decoder levels 1 and 2 (of 0..3: 1/8, 1/4, 1/2, 1) get their own heads
        self.aux_heads = (
            nn.ModuleList(nn.Conv2d(widths[2 - i], out_channels, 1) for i in range(2)) if deep_supervision else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        m = 2 ** (self.levels - 1)
        if x.shape[-2] % m or x.shape[-1] % m:
            raise RuntimeError(
                f"classic U-Net input height and width must be multiples of {m}; got {tuple(x.shape[-2:])}"
            )
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        aux = []
        for level, (up, conv) in enumerate(zip(self.up, self.up_conv)):
            x = conv(torch.cat([skips.pop(), up(x)], dim=1))
            if self.aux_heads is not None and self.training and level in (1, 2):
                aux.append(self.aux_heads[level - 1](x))
        return (self.head(x), aux) if aux else self.head(x)


# -- factory -----------------------------------------------------------------------------------


def build_model(cfg: ModelConfig) -> nn.Module:
    """Build the network described by ``cfg`` (random init unless ``encoder_weights="imagenet"``).

    Args:
        cfg: the model config.

    Returns:
        an ``nn.Module`` in training mode, on the CPU, mapping (N, in_channels, H, W) to
        (N, cfg.out_channels, H, W) logits; H, W multiples of :func:`required_multiple`.

    Raises:
        ValueError: pretrained weights requested but not cached and not downloadable.
    """
    if cfg.arch == "classic":
        return ClassicUNet(cfg.in_channels, cfg.out_channels, cfg.classic_width, cfg.deep_supervision)
    import segmentation_models_pytorch as smp

    kwargs = smp_options(cfg)
    if cfg.encoder_weights is None:
        return smp.create_model(
            cfg.arch,
            encoder_name=cfg.encoder,
            encoder_weights=None,
            in_channels=cfg.in_channels,
            classes=cfg.out_channels,
            **kwargs,
        )
    # Pretrained: fetch the file ourselves (fast failure offline), then load it the way smp does,
    # so that smp never makes a network call that retries for half a minute.
    weights_file = _pretrained_file(cfg.encoder, cfg.encoder_weights)
    from safetensors.torch import load_file

    model = smp.create_model(
        cfg.arch, encoder_name=cfg.encoder, encoder_weights=None, in_channels=3, classes=cfg.out_channels, **kwargs
    )
    state = load_file(weights_file, device="cpu")
    model.encoder.load_state_dict(state)
    if cfg.in_channels != 3:
        model.encoder.set_in_channels(cfg.in_channels, pretrained=True)
    return model


def smp_options(cfg: ModelConfig) -> dict[str, Any]:
    """The keyword arguments of ``smp.create_model`` beyond arch, encoder, channels and classes (also
    written into a bioimage.io package's architecture, :mod:`core.nn.package_arch`)."""
    kwargs: dict[str, Any] = {}
    if cfg.encoder_depth != 5:
        kwargs["encoder_depth"] = cfg.encoder_depth
        if cfg.arch in ("Unet", "UnetPlusPlus"):
            kwargs["decoder_channels"] = [256, 128, 64, 32, 16][-cfg.encoder_depth :]
    if cfg.attention:
        kwargs["decoder_attention_type"] = cfg.attention
    return kwargs


def _pretrained_file(encoder: str, weights: str) -> str:
    """Path of the cached weights file, downloading it first if possible; ValueError if not."""
    import huggingface_hub as hf
    from segmentation_models_pytorch.encoders import encoders

    settings = encoders[encoder]["pretrained_settings"].get(weights)
    if settings is None:
        raise SegDashError(f"encoder {encoder} has no {weights!r} weights")
    repo, rev = settings["repo_id"], settings["revision"]
    cached = hf.try_to_load_from_cache(repo, "model.safetensors", revision=rev)
    if isinstance(cached, str):
        return cached
    offline_msg = (
        f"pretrained weights for {encoder} ({weights}) cannot be downloaded (offline?); use encoder_weights=None"
    )
    if hf.constants.HF_HUB_OFFLINE:
        raise SegDashError(offline_msg)
    host = urlparse(hf.constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=_CONNECT_TIMEOUT_S).close()
    except OSError:
        raise SegDashError(offline_msg) from None
    result: dict[str, Any] = {}

    def fetch() -> None:
        try:
            result["path"] = hf.hf_hub_download(repo, "model.safetensors", revision=rev, etag_timeout=5)
        except Exception as exc:  # noqa: BLE001 - reported below as ValueError
            result["error"] = exc

    t = threading.Thread(target=fetch, daemon=True, name="segdash-weights-download")
    t.start()
    t.join(_DOWNLOAD_TIMEOUT_S)
    if "path" not in result:
        why = result.get("error") or f"no answer within {_DOWNLOAD_TIMEOUT_S:.0f} s"
        raise SegDashError(f"{offline_msg} ({why})")
    return result["path"]


# -- outputs -----------------------------------------------------------------------------------


def probabilities(logits: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Class probabilities with K channels whatever the head.

    Args:
        logits: (N, 1, H, W) for ``n_classes == 2``, else (N, K, H, W).
        n_classes: classes K.

    Returns:
        (N, K, H, W): ``cat([1 - p, p])`` with ``p = sigmoid(logits)`` for binary, else softmax.

    Example:
        >>> probabilities(torch.zeros(1, 1, 2, 2), 2)[0, :, 0, 0].tolist()
        [0.5, 0.5]
    """
    if n_classes == 2:
        if logits.shape[1] != 1:
            raise SegDashError(f"binary logits must have 1 channel, got {logits.shape[1]}")
        p = torch.sigmoid(logits.float())
        return torch.cat([1.0 - p, p], dim=1)
    if logits.shape[1] != n_classes:
        raise SegDashError(f"logits have {logits.shape[1]} channels for {n_classes} classes")
    return torch.softmax(logits.float(), dim=1)


def labels_from_logits(logits: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(N, H, W) int64 class indices: ``logit > 0`` (p > 0.5) for binary, else argmax."""
    if n_classes == 2:
        return (logits[:, 0] > 0).long()
    return logits.argmax(dim=1)


def required_multiple(cfg: ModelConfig) -> int:
    """Input height and width must be multiples of this: 16 for classic, ``2**depth`` for smp
    (32 at depth 5; DeepLabV3Plus 16, its encoder stops at stride 16)."""
    if cfg.arch == "classic":
        return 2 ** (ClassicUNet.levels - 1)
    if cfg.arch == "DeepLabV3Plus":
        return min(16, 2**cfg.encoder_depth)
    return 2**cfg.encoder_depth


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
