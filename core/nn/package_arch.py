"""The network of a bioimage.io package's ``pytorch_state_dict`` weights, both ways.

For other tools (bioimageio.core, BiaPy): :func:`arch_source` is a self-contained Python file
(``segdash_unet.py``; torch, and segmentation-models-pytorch for smp networks) whose ``SegDashUNet``
(:data:`ARCH_CALLABLE`), called with :func:`arch_kwargs`, is the network followed by sigmoid / softmax:
the package's ``probabilities`` output. Its classic U-Net is SegDash's own class's source, copied.

For SegDash: :func:`packaged_model` builds the same module from SegDash's own code (never from the
file in a package, which is code), so its state dict (``net.*`` keys) loads with
``torch.load(weights_only=True)`` and ``load_state_dict(strict=True)``.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from . import model as _model
from .model import ModelConfig, build_model, smp_options

__all__ = ["ARCH_FILE", "ARCH_CALLABLE", "arch_kwargs", "arch_source", "packaged_model"]

ARCH_FILE = "segdash_unet.py"
ARCH_CALLABLE = "SegDashUNet"

_HEADER = '''"""SegDash's segmentation network, for the pytorch_state_dict weights of this bioimage.io package.

SegDashUNet(**kwargs) (kwargs from rdf.yaml) is the U-Net followed by sigmoid (binary: one logit,
output [1 - p, p]) or softmax: (N, 1, H, W) raw normalised image -> (N, K, H, W) class probabilities.
Needs torch; smp networks (arch other than "classic") also segmentation-models-pytorch.
"""

import torch
from torch import nn

'''

_WRAPPER = """

class SegDashUNet(nn.Module):
    def __init__(self, arch="classic", in_channels=1, out_channels=1, classic_width=64, deep_supervision=False,
                 encoder="resnet18", smp_options=None):
        super().__init__()
        if arch == "classic":
            self.net = ClassicUNet(in_channels, out_channels, classic_width, deep_supervision)
        else:
            import segmentation_models_pytorch as smp

            self.net = smp.create_model(arch, encoder_name=encoder, encoder_weights=None, in_channels=in_channels,
                                        classes=out_channels, **(smp_options or {}))
        self.binary = out_channels == 1

    def forward(self, x):
        logits = self.net(x).float()
        if self.binary:
            p = torch.sigmoid(logits)
            return torch.cat([1.0 - p, p], dim=1)
        return torch.softmax(logits, dim=1)
"""


def arch_kwargs(cfg: ModelConfig) -> dict[str, Any]:
    """The ``kwargs`` of ``SegDashUNet`` for ``cfg`` (plain YAML values)."""
    kwargs: dict[str, Any] = {"arch": cfg.arch, "in_channels": cfg.in_channels, "out_channels": cfg.out_channels}
    if cfg.arch == "classic":
        return {**kwargs, "classic_width": cfg.classic_width, "deep_supervision": cfg.deep_supervision}
    return {**kwargs, "encoder": cfg.encoder, "smp_options": smp_options(cfg)}


def arch_source() -> str:
    """``segdash_unet.py``: the classic U-Net's source as SegDash runs it, and the probabilities wrapper."""
    classes = "\n\n".join(inspect.getsource(c) for c in (_model._DoubleConv, _model.ClassicUNet))
    return _HEADER + classes + _WRAPPER


class _Packaged(nn.Module):
    """SegDash's twin of ``SegDashUNet``: same ``net`` submodule, so the same state dict keys."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net


def packaged_model(cfg: ModelConfig) -> nn.Module:
    """A module whose ``state_dict`` keys are those of the package's ``SegDashUNet(**arch_kwargs(cfg))``;
    its ``net`` is SegDash's own network (random weights until the state dict is loaded)."""
    return _Packaged(build_model(ModelConfig.from_dict({**cfg.to_dict(), "encoder_weights": None})))
