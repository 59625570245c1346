"""bioimage.io model packages: a SegDash checkpoint as a model that Fiji (deepImageJ), ilastik, napari
and BiaPy run, and such a package read back as a model SegDash predicts with.

A package (:func:`core.workflow.model_export.export_bioimageio`) is a ZIP holding ``rdf.yaml`` (the bioimage.io model
description, format 0.5, built and validated with ``bioimageio.spec``), TorchScript weights (and ONNX
weights when ``torch.onnx`` exports the network), a test input and its expected output (``.npy``)
cut from a slice of the training dataset, a cover image (image | prediction), a README and the
training run's reproducibility config (``segdash_config.json``).

What the package says about the model:

- input ``raw``: axes ``b, c, y, x`` (one channel), float32; height and width ``min + n * step``
  with both the network's input multiple (:func:`core.nn.model.required_multiple`: 16 for the classic
  U-Net, 32 for smp encoders at depth 5).
- preprocessing: exactly SegDash's normalisation, the fixed intensity window ``(lo, hi)`` stored in
  the checkpoint (the 1-99 percentile window of the training dataset): ``scale_linear`` with
  ``gain = 1 / (hi - lo)``, ``offset = -lo / (hi - lo)``, then ``clip`` to [0, 1].
- output ``probabilities``: axes ``b, c, y, x`` with one channel per class, named by the class
  names, summing to 1 (sigmoid for binary networks, softmax otherwise; computed inside the
  weights). Labels are the arg-max over channels; for two classes that is ``P(class 1) > 0.5``.
- ``config.segdash``: model config, class names, window, patch size, run, dataset, epoch, metrics:
  what :func:`load_package` needs to predict with the package in SegDash without SegDash's model
  code (``python -m core predict --checkpoint MODEL.zip``).

Validation works offline: the description is built with ``perform_io_checks`` on, which reads only
the local files written here; nothing in the package points to a URL that must be fetched.

Example:
    >>> ckpt = load_package("model.zip")                                          # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import io
import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn

from ..errors import SegDashError
from .checkpoint import Checkpoint
from .model import ModelConfig

__all__ = ["DEFAULT_LICENSE", "LICENSES", "Probabilities", "is_package", "load_package"]

DEFAULT_LICENSE = "CC-BY-4.0"
#: Common licences for models (SPDX identifiers); any SPDX identifier is accepted.
LICENSES = ("CC-BY-4.0", "CC0-1.0", "MIT", "Apache-2.0", "BSD-3-Clause", "GPL-3.0-only")


class Probabilities(nn.Module):
    """The network followed by sigmoid (binary, one logit) or softmax: (N, C, H, W) -> (N, K, H, W)."""

    def __init__(self, net: nn.Module, binary: bool):
        super().__init__()
        self.net = net
        self.binary = binary

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The network's own output, traced as a second method: SegDash predicts with it, bit for bit
        what the checkpoint gives."""
        return self.net(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.net(x).float()
        if self.binary:
            p = torch.sigmoid(logits)
            return torch.cat([1.0 - p, p], dim=1)
        return torch.softmax(logits, dim=1)


class _LogitsFromProbabilities(nn.Module):
    """Makes a package's TorchScript module look like a SegDash network (logits) to the inference code.

    Packages exported by SegDash carry the network's logits as the traced method ``logits``. Without
    it, logits are made from the probabilities so that ``core.nn.model.probabilities`` gives them back:
    softmax of ``log p`` is ``p``, sigmoid of ``log p1 - log p0`` is ``p1 / (p0 + p1) = p1``.
    """

    def __init__(self, module: nn.Module, binary: bool):
        super().__init__()
        self.module = module
        self.binary = binary
        self.has_logits = hasattr(module, "logits")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.has_logits:
            return self.module.logits(x)
        p = self.module(x).float()
        logp = torch.log(p)
        if self.binary:
            return logp[:, 1:2] - logp[:, 0:1]
        return logp


def is_package(path: str | Path) -> bool:
    """True when ``path`` is a ZIP with a bioimage.io description (``rdf.yaml`` / ``bioimageio.yaml``).

    A PyTorch ``.pt`` file is also a ZIP, but has no such member.
    """
    path = Path(path)
    try:
        if not path.is_file() or not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as zf:
            return any(n in ("rdf.yaml", "bioimageio.yaml") or n.endswith(".bioimageio.yaml") for n in zf.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def load_package(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """A SegDash-exported bioimage.io package as a :class:`~core.nn.checkpoint.Checkpoint` to predict with.

    The TorchScript weights run as they are (``torch.jit.load``), with no SegDash model code; the
    normalisation window, class names and input multiple come from the package. Its ``model`` returns
    logits whose ``core.nn.model.probabilities`` are the package's probabilities, so every prediction
    path of SegDash takes it like a checkpoint. Training cannot resume from it.

    Raises:
        ValueError: not a bioimage.io package, not exported by SegDash, no TorchScript weights, or a
            weights file whose SHA-256 differs from the description's.
    """
    import yaml

    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            rdf_name = next((n for n in names if n in ("rdf.yaml", "bioimageio.yaml")), None)
            if rdf_name is None:
                raise SegDashError(f"{path}: not a bioimage.io model package (no rdf.yaml)")
            rdf = yaml.safe_load(zf.read(rdf_name))
            if not isinstance(rdf, dict) or rdf.get("type") != "model":
                raise SegDashError(f"{path}: the bioimage.io package does not describe a model")
            seg = (rdf.get("config") or {}).get("segdash")
            if not isinstance(seg, dict) or "model_config" not in seg:
                raise SegDashError(
                    f"{path}: a bioimage.io model not exported by SegDash; SegDash predicts only with "
                    "packages it exported (it needs their normalisation window and classes)"
                )
            ts = (rdf.get("weights") or {}).get("torchscript")
            if not isinstance(ts, dict) or ts.get("source") not in names:
                raise SegDashError(f"{path}: the package has no TorchScript weights")
            data = zf.read(ts["source"])
    except (OSError, zipfile.BadZipFile, yaml.YAMLError) as exc:
        raise SegDashError(f"{path}: cannot read this bioimage.io package ({type(exc).__name__}: {exc})") from None
    want = ts.get("sha256")
    if want and hashlib.sha256(data).hexdigest() != want:
        raise SegDashError(f"{path}: the TorchScript weights do not match their SHA-256 in rdf.yaml (damaged package)")
    try:
        cfg = ModelConfig.from_dict({**seg["model_config"], "encoder_weights": None})
        class_names = tuple(str(c) for c in seg["class_names"])
        window = tuple(float(v) for v in seg["norm_window"])
    except (KeyError, TypeError, ValueError) as exc:
        raise SegDashError(f"{path}: malformed SegDash section in rdf.yaml ({exc})") from None
    if len(class_names) != cfg.n_classes or len(window) != 2:
        raise SegDashError(f"{path}: malformed SegDash section in rdf.yaml (classes or window)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch 2.9+ calls TorchScript deprecated
            module = torch.jit.load(io.BytesIO(data), map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - torch.jit.load fails in many ways on damaged files
        raise SegDashError(f"{path}: cannot load the TorchScript weights ({type(exc).__name__})") from None
    model = _LogitsFromProbabilities(module, cfg.binary).to(device).eval()
    extra = {"dataset": seg.get("training_dataset", ""), "bioimageio": True, "package_name": rdf.get("name", "")}
    return Checkpoint(
        model=model,
        model_config=cfg,
        class_names=class_names,
        norm_window=window,
        patch_size=int(seg.get("patch_size", 256)),
        epoch=int(seg.get("epoch", 0)),
        metrics=dict(seg.get("metrics") or {}),
        history=[],
        run_id=str(seg.get("run_id", "")),
        state={"extra": extra},
        path=path,
    )
