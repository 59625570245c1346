"""bioimage.io model packages: a SegDash checkpoint as a model that Fiji (deepImageJ), ilastik, napari
and BiaPy run, and such a package read back as a model SegDash predicts with.

A package (:func:`core.workflow.model_export.export_bioimageio`) is a ZIP holding ``rdf.yaml`` (the bioimage.io model
description, format 0.5, built and validated with ``bioimageio.spec``), ``pytorch_state_dict`` weights
with their architecture (``segdash_unet.py``, :mod:`core.nn.package_arch`), TorchScript weights (and ONNX
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
  weights), with a halo on ``y`` and ``x`` (SegDash's tile overlap) for tiled consumers. Labels follow the
  run's tuned decision (``config.segdash.decision``: threshold or class weights, cleanup; stated in the
  package README too).
- ``config.segdash``: model config, class names, window, patch size, run, dataset, epoch, metrics,
  the tuned decision: what :func:`load_package` needs to predict with the package in SegDash
  (``python -m core predict --checkpoint MODEL.zip``): the state dict loaded as data into SegDash's own
  network. TorchScript weights are code (they can read and write files): they run only when trusted.

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
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from ..errors import SegDashError
from .archive import TEXT_MAX_BYTES, check_model_file, read_member
from .decision import Decision
from .model import ModelConfig
from .package_arch import ARCH_CALLABLE, arch_kwargs, packaged_model
from .trained import Checkpoint

__all__ = ["DEFAULT_LICENSE", "LICENSES", "Probabilities", "is_package", "load_package", "trusting_code"]

DEFAULT_LICENSE = "CC-BY-4.0"
#: Common licences for models (SPDX identifiers); any SPDX identifier is accepted.
LICENSES = ("CC-BY-4.0", "CC0-1.0", "MIT", "Apache-2.0", "BSD-3-Clause", "GPL-3.0-only")

_TRUST_CODE: ContextVar[bool] = ContextVar("segdash_trust_code", default=False)


@contextmanager
def trusting_code(trust: bool = True) -> Iterator[None]:
    """Within it, :func:`load_package` (and so ``load_checkpoint``) runs a package's TorchScript weights
    when it has no state dict weights of SegDash's network: the user's opt-in (``--trust-code``)."""
    token = _TRUST_CODE.set(bool(trust))
    try:
        yield
    finally:
        _TRUST_CODE.reset(token)


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


def load_package(path: str | Path, device: str | torch.device = "cpu", trust_code: bool | None = None) -> Checkpoint:
    """A SegDash bioimage.io package as a :class:`~core.nn.checkpoint.Checkpoint` to predict with.

    Its ``pytorch_state_dict`` weights are loaded as data (``torch.load(weights_only=True)``) into
    SegDash's own network, built from the model config in ``config.segdash`` (the package's
    architecture file is never run): the same logits as the checkpoint it was exported from, and the
    tuned decision (threshold, cleanup) from ``config.segdash.decision``. A package without such
    weights has only TorchScript, a program that can read and write files: it is refused unless
    ``trust_code`` (default: :func:`trusting_code`'s setting, off) says to run it. A ``config.segdash``
    section is no proof of where a package comes from (anyone can write one): it only holds the
    normalisation window and classes SegDash needs. Training cannot resume from a package.

    Raises:
        ValueError: not a bioimage.io package, no SegDash section, TorchScript only and not trusted,
            weights whose SHA-256 differs from the description's, a member too large (checked from the
            ZIP directory, :mod:`core.nn.archive`), or weights that do not fit the model config.
    """
    import yaml

    trust = _TRUST_CODE.get() if trust_code is None else bool(trust_code)
    path = Path(path)
    try:
        check_model_file(path)  # every member's size from the ZIP directory, before anything is read
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            rdf_name = next((n for n in names if n in ("rdf.yaml", "bioimageio.yaml")), None)
            if rdf_name is None:
                raise SegDashError(f"{path}: not a bioimage.io model package (no rdf.yaml)")
            rdf = yaml.safe_load(read_member(zf, rdf_name, str(path), TEXT_MAX_BYTES))
            if not isinstance(rdf, dict) or rdf.get("type") != "model":
                raise SegDashError(f"{path}: the bioimage.io package does not describe a model")
            seg = (rdf.get("config") or {}).get("segdash")
            if not isinstance(seg, dict) or "model_config" not in seg:
                raise SegDashError(
                    f"{path}: a bioimage.io model not exported by SegDash; SegDash predicts only with "
                    "packages it exported (it needs their normalisation window and classes)"
                )
            cfg, class_names, window, decision = _segdash_section(seg, path)
            weights = rdf.get("weights") if isinstance(rdf.get("weights"), dict) else {}
            entry, kind = _weights_entry(weights, cfg, names, trust, path)
            data = read_member(zf, entry["source"], str(path))
    except (OSError, zipfile.BadZipFile, yaml.YAMLError) as exc:
        raise SegDashError(f"{path}: cannot read this bioimage.io package ({type(exc).__name__})") from None
    want = entry.get("sha256")
    if want and hashlib.sha256(data).hexdigest() != want:
        what = "state dict" if kind == "pytorch_state_dict" else "TorchScript"
        raise SegDashError(f"{path}: the {what} weights do not match their SHA-256 in rdf.yaml (damaged package)")
    if kind == "pytorch_state_dict":
        model = _from_state_dict(data, cfg, path)
    else:
        model = _LogitsFromProbabilities(_load_torchscript(data, path), cfg.binary)
    extra = {"dataset": seg.get("training_dataset", ""), "bioimageio": True, "package_name": rdf.get("name", "")}
    extra["weights"] = kind
    return Checkpoint(
        model=model.to(device).eval(),
        model_config=cfg,
        class_names=class_names,
        norm_window=window,
        patch_size=int(seg.get("patch_size", 256)),
        epoch=int(seg.get("epoch", 0)),
        metrics=dict(seg.get("metrics") or {}),
        history=[],
        run_id=str(seg.get("run_id", "")),
        state={"extra": extra, "decision": decision.to_dict(), "context": 0},
        path=path,
    )


def _segdash_section(seg: dict, path: Path) -> tuple[ModelConfig, tuple[str, ...], tuple[float, float], Decision]:
    """The model config, classes, window and decision of ``config.segdash``: data, validated."""
    try:
        cfg = ModelConfig.from_dict({**seg["model_config"], "encoder_weights": None})
        class_names = tuple(str(c) for c in seg["class_names"])
        window = tuple(float(v) for v in seg["norm_window"])
        decision = Decision.from_dict(seg.get("decision"))
    except (KeyError, TypeError, ValueError) as exc:
        raise SegDashError(f"{path}: malformed SegDash section in rdf.yaml ({exc})") from None
    if len(class_names) != cfg.n_classes or len(window) != 2:
        raise SegDashError(f"{path}: malformed SegDash section in rdf.yaml (classes or window)")
    return cfg, class_names, window, decision  # type: ignore[return-value]


def _weights_entry(weights: dict, cfg: ModelConfig, names: list[str], trust: bool, path: Path) -> tuple[dict, str]:
    """``(entry, kind)``: the ``pytorch_state_dict`` weights when their architecture is SegDash's network
    for ``cfg`` (rebuilt from SegDash's code, never the package's), else TorchScript when trusted."""
    sd = weights.get("pytorch_state_dict")
    arch = sd.get("architecture") if isinstance(sd, dict) else None
    if (
        isinstance(arch, dict)
        and arch.get("callable") == ARCH_CALLABLE
        and arch.get("kwargs") == arch_kwargs(cfg)
        and sd.get("source") in names
    ):
        return sd, "pytorch_state_dict"
    ts = weights.get("torchscript")
    if not trust:
        raise SegDashError(
            f"{path}: this package has no pytorch_state_dict weights of SegDash's U-Net, which SegDash loads "
            "as data; its other weights (TorchScript) are a program that can read and write files on this "
            "machine, so it is refused. Only if you trust where the package comes from: --trust-code "
            "(python -m core predict)"
        )
    if not isinstance(ts, dict) or ts.get("source") not in names:
        raise SegDashError(f"{path}: the package has neither SegDash's pytorch_state_dict nor TorchScript weights")
    return ts, "torchscript"


def _from_state_dict(data: bytes, cfg: ModelConfig, path: Path) -> nn.Module:
    """SegDash's network for ``cfg`` with the package's state dict, loaded as data only."""
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - refused (UnpicklingError) or damaged: either way not loaded
        raise SegDashError(
            f"{path}: cannot load the state dict weights as plain tensors ({type(exc).__name__})"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SegDashError(f"{path}: the state dict weights are not a dict of tensors")
    model = packaged_model(cfg)
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError) as exc:
        raise SegDashError(
            f"{path}: the state dict weights do not fit {cfg.describe()}: {str(exc).splitlines()[0][:200]}"
        ) from None
    return model.net


def _load_torchscript(data: bytes, path: Path) -> nn.Module:
    """Trusted TorchScript weights (the user opted in: they run as code)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch 2.9+ calls TorchScript deprecated
            return torch.jit.load(io.BytesIO(data), map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - torch.jit.load fails in many ways on damaged files
        raise SegDashError(f"{path}: cannot load the TorchScript weights ({type(exc).__name__})") from None
