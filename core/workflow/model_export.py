"""Exporting a training run's checkpoint as a bioimage.io model package (:func:`export_bioimageio`)
and testing one (:func:`test_package`); the format is described in :mod:`core.nn.bioimageio`.

Example:
    >>> summary = export_bioimageio("runs/r1/best.pt", "model.zip", workspace=ws)   # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import tifffile
import torch
from torch import nn

from ..data.intensity import normalize
from ..data.io import atomic_write
from ..errors import SegDashError
from ..nn.bioimageio import DEFAULT_LICENSE, LICENSES, Probabilities, is_package
from ..nn.checkpoint import load_checkpoint
from ..nn.model import required_multiple
from ..nn.package_arch import ARCH_CALLABLE, ARCH_FILE, arch_kwargs, arch_source
from .model_contents import bundle_config, cover_image, input_crop, readme_text, segdash_config

__all__ = ["export_bioimageio", "test_package", "output_halo"]

_INPUT_ID, _OUTPUT_ID = "raw", "probabilities"
_UNET_DOI = "10.1007/978-3-319-24574-4_28"


def _safe_name(name: str) -> str:
    """bioimage.io names allow letters, digits and ``_+- ()``."""
    out = re.sub(r"[^A-Za-z0-9_+\- ()]", "-", name).strip(" -") or "SegDash model"
    return out[:128]


def _trace(module: Probabilities, example: torch.Tensor) -> torch.jit.ScriptModule:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarning: the classic U-Net's shape check is not traced
        return torch.jit.trace_module(module, {"forward": example, "logits": example}, check_trace=False)


def _export_onnx(module: nn.Module, example: torch.Tensor, path: Path) -> str | None:
    """Write ONNX weights; returns why not, or ``None`` when written."""
    try:
        import onnx  # noqa: F401 - torch.onnx needs it
    except ImportError:
        return "the onnx package is not installed"
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                (example,),
                str(path),
                input_names=[_INPUT_ID],
                output_names=[_OUTPUT_ID],
                opset_version=17,
                dynamo=False,
                dynamic_axes={_INPUT_ID: {0: "b", 2: "y", 3: "x"}, _OUTPUT_ID: {0: "b", 2: "y", 3: "x"}},
            )
    except Exception as exc:  # noqa: BLE001 - any exporter failure just means no ONNX weights
        return f"torch.onnx export failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})"
    return None


def export_bioimageio(
    checkpoint: str | Path,
    out: str | Path,
    *,
    workspace: Any,
    authors: Sequence[str] = (),
    maintainers: Sequence[str] = (),
    version: str = "0.1.0",
    license: str = DEFAULT_LICENSE,
    name: str | None = None,
    description: str | None = None,
    onnx: bool = True,
    pixel_size: float | None = None,
    pixel_unit: str = "micrometer",
) -> dict[str, Any]:
    """Write a SegDash checkpoint as a bioimage.io model package (ZIP), validated by ``bioimageio.spec``.

    Args:
        checkpoint: a SegDash checkpoint (``best.pt``, ``last.pt``).
        out: the package to write (``.zip``); written atomically.
        workspace: the workspace the model was trained in (a :class:`~core.store.workspace.Workspace` or
            its folder): the test input is cut from a slice of the training dataset.
        authors: author names (at least one: the people who made the model; no default).
        maintainers: GitHub user names of who answers for the package (optional).
        version: the model's version (``0.1.0``).
        license: SPDX licence identifier of the model (``CC-BY-4.0``, ``MIT``, ...).
        name: model name; default ``SegDash <dataset> <run>``.
        description: one-line description; default says what the model segments.
        onnx: also write ONNX weights when ``torch.onnx`` exports the network.
        pixel_size: physical size of a pixel (same in y and x), written as the axes' scale; default
            the training dataset's, when its source stated one.
        pixel_unit: unit of ``pixel_size`` (a bioimage.io space unit, e.g. ``micrometer``, ``nanometer``).

    Returns:
        JSON-ready summary ``{out, name, weights, onnx, onnx_note, test_shape, min_size, step, classes}``.

    Raises:
        ValueError: the checkpoint cannot be read, the training dataset is not in the workspace, an
            author or the licence is missing or invalid, or the description does not validate.
    """
    from bioimageio.spec import ValidationContext, save_bioimageio_package
    from bioimageio.spec.model import v0_5 as bm

    if is_package(checkpoint):
        raise SegDashError(f"{checkpoint}: already a bioimage.io model package; export a SegDash checkpoint (.pt)")
    ckpt = load_checkpoint(Path(checkpoint))
    authors = [a.strip() for a in authors if a and a.strip()]
    if not authors:
        raise SegDashError(
            "a bioimage.io model needs at least one author: the names of the people who made it "
            "(SegDash does not invent one)"
        )
    maintainers = [m.strip().lstrip("@") for m in maintainers if m and m.strip()]
    bad = [m for m in maintainers if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}", m)]
    if bad:
        raise SegDashError(f"maintainers are GitHub user names (letters, digits, '-'): not {bad[0]!r}")
    license = (license or "").strip()
    if not license:
        raise SegDashError("a bioimage.io model needs a licence (an SPDX identifier such as CC-BY-4.0 or MIT)")
    try:
        bm.LicenseId(license)
    except Exception:  # noqa: BLE001 - pydantic's error lists all ~700 identifiers
        raise SegDashError(
            f"unknown licence {license!r}: give an SPDX identifier such as {', '.join(LICENSES)}"
        ) from None
    cfg = ckpt.model_config
    if cfg.in_channels != 1:
        raise SegDashError(f"{checkpoint}: only one-channel models are exported ({cfg.in_channels} channels)")
    multiple = required_multiple(cfg)
    lo, hi = (float(v) for v in ckpt.norm_window)
    span = max(hi - lo, 1e-12)
    halo = output_halo(ckpt.patch_size, multiple)
    min_side = 2 * halo + multiple  # the smallest input whose output keeps pixels once the halo is cropped
    image, dataset_label, ws = input_crop(ckpt, workspace, multiple, min_side)
    dataset = str(ckpt.extra.get("dataset") or "")
    if pixel_size is None and ws.pixel_size(dataset) is not None:  # the training data's, as the axes' scale
        px = ws.pixel_size(dataset)
        if px.y == px.x:
            pixel_size, pixel_unit = px.x, px.unit
    name = _safe_name(name or f"SegDash {dataset} {ckpt.run_id}".strip())

    net = Probabilities(ckpt.model.cpu().eval(), cfg.binary).eval()
    x_raw = image.astype(np.float32)[None, None]
    x = torch.from_numpy(np.ascontiguousarray(normalize(image, (lo, hi))[None, None]))
    with torch.no_grad():
        expected = net(x).numpy()
    traced = _trace(net, x)
    # the traced graph must work on other sizes than the example: check one
    other = torch.rand(1, 1, x.shape[2] + multiple, x.shape[3] + 2 * multiple)
    with torch.no_grad():
        if not torch.allclose(traced(other), net(other), atol=1e-4):
            raise SegDashError(
                f"{checkpoint}: the TorchScript trace of {cfg.describe()} does not generalise to "
                "other input sizes; this network cannot be exported"
            )

    tmp = Path(tempfile.mkdtemp(prefix="segdash-bioimageio-"))
    try:
        ts_path = tmp / "weights_torchscript.pt"
        traced.save(str(ts_path))
        sd_path, arch_path = tmp / "weights_state_dict.pt", tmp / ARCH_FILE
        torch.save({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, sd_path)
        arch_path.write_text(arch_source())
        np.save(tmp / "test_input.npy", x_raw)
        np.save(tmp / "test_output.npy", expected.astype(np.float32))
        tifffile.imwrite(tmp / "sample_input.tif", x_raw[0, 0])  # for people: (y, x) and (channel, y, x)
        tifffile.imwrite(tmp / "sample_output.tif", expected[0].astype(np.float32))
        from PIL import Image

        Image.fromarray(cover_image(image, expected[0], (lo, hi))).save(tmp / "cover.png")
        onnx_note = "ONNX weights not asked for."
        onnx_path = tmp / "weights.onnx"
        onnx_ok = False
        if onnx:
            why = _export_onnx(net, x, onnx_path)
            onnx_ok = why is None
            onnx_note = "ONNX (opset 17), converted from the same network." if onnx_ok else f"No ONNX weights: {why}."
        (tmp / "README.md").write_text(readme_text(name, ckpt, dataset_label, lo, hi, multiple, onnx_note, halo))
        (tmp / "segdash_config.json").write_text(json.dumps(bundle_config(ckpt), indent=2, default=str))

        try:
            with ValidationContext(perform_io_checks=True):
                space = {"scale": float(pixel_size), "unit": pixel_unit} if pixel_size else {}
                size_in = bm.ParameterizedSize(min=min_side, step=multiple)
                inp = bm.InputTensorDescr(
                    id=bm.TensorId(_INPUT_ID),
                    description="grayscale image, raw intensities (normalised by the preprocessing)",
                    axes=[
                        bm.BatchAxis(),
                        bm.ChannelAxis(channel_names=[bm.Identifier("raw")]),
                        bm.SpaceInputAxis(id=bm.AxisId("y"), size=size_in, **space),
                        bm.SpaceInputAxis(id=bm.AxisId("x"), size=size_in, **space),
                    ],
                    test_tensor=bm.FileDescr(source=tmp / "test_input.npy"),
                    sample_tensor=bm.FileDescr(source=tmp / "sample_input.tif"),
                    data=bm.IntervalOrRatioDataDescr(type="float32"),
                    preprocessing=[
                        bm.EnsureDtypeDescr(kwargs=bm.EnsureDtypeKwargs(dtype="float32")),
                        bm.ScaleLinearDescr(kwargs=bm.ScaleLinearKwargs(gain=1.0 / span, offset=-lo / span)),
                        bm.ClipDescr(kwargs=bm.ClipKwargs(min=0.0, max=1.0)),
                    ],
                )
                channel_ids = [bm.Identifier(_channel_id(c, i)) for i, c in enumerate(ckpt.class_names)]
                out_desc = bm.OutputTensorDescr(
                    id=bm.TensorId(_OUTPUT_ID),
                    description="class probabilities, one channel per class; labels = argmax over channels",
                    axes=[
                        bm.BatchAxis(),
                        bm.ChannelAxis(channel_names=channel_ids),
                        bm.SpaceOutputAxisWithHalo(
                            halo=halo,
                            id=bm.AxisId("y"),
                            size=bm.SizeReference(tensor_id=bm.TensorId(_INPUT_ID), axis_id=bm.AxisId("y")),
                            **space,
                        ),
                        bm.SpaceOutputAxisWithHalo(
                            halo=halo,
                            id=bm.AxisId("x"),
                            size=bm.SizeReference(tensor_id=bm.TensorId(_INPUT_ID), axis_id=bm.AxisId("x")),
                            **space,
                        ),
                    ],
                    test_tensor=bm.FileDescr(source=tmp / "test_output.npy"),
                    sample_tensor=bm.FileDescr(source=tmp / "sample_output.tif"),
                    data=bm.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0)),
                )
                torch_version = bm.Version(torch.__version__.split("+")[0])
                weights = {
                    "pytorch_state_dict": bm.PytorchStateDictWeightsDescr(
                        source=sd_path,
                        architecture=bm.ArchitectureFromFileDescr(
                            source=arch_path, callable=bm.Identifier(ARCH_CALLABLE), kwargs=arch_kwargs(cfg)
                        ),
                        pytorch_version=torch_version,
                    ),
                    "torchscript": bm.TorchscriptWeightsDescr(
                        source=ts_path, pytorch_version=torch_version, parent="pytorch_state_dict"
                    ),
                }
                if onnx_ok:
                    weights["onnx"] = bm.OnnxWeightsDescr(
                        source=onnx_path, opset_version=17, parent="pytorch_state_dict"
                    )
                descr = bm.ModelDescr(
                    name=name,
                    description=(
                        description
                        or f"U-Net segmentation of {dataset or 'images'} into "
                        f"{', '.join(ckpt.class_names)}, trained in SegDash"
                    )[:1024],
                    authors=[bm.Author(name=a) for a in authors],
                    version=bm.Version(version),
                    cite=[
                        bm.CiteEntry(
                            text="Ronneberger, Fischer, Brox: U-Net: Convolutional Networks for "
                            "Biomedical Image Segmentation (MICCAI 2015)",
                            doi=bm.Doi(_UNET_DOI),
                        )
                    ],
                    license=license,
                    documentation=bm.FileDescr(source=tmp / "README.md"),
                    covers=[bm.FileDescr(source=tmp / "cover.png")],
                    attachments=[bm.FileDescr(source=tmp / "segdash_config.json")],
                    tags=["segdash", "unet", "semantic-segmentation", "2d", "pytorch", "torchscript"],
                    inputs=[inp],
                    outputs=[out_desc],
                    weights=bm.WeightsDescr(**weights),
                    config=bm.Config(segdash=segdash_config(ckpt, multiple)),
                )
        except Exception as exc:  # pydantic ValidationError: name the fields, in one message
            raise SegDashError(f"the bioimage.io description does not validate: {_validation_text(exc)}") from None
        # maintainers are GitHub names, which bioimageio.spec looks up on GitHub when it checks files: they
        # are added after the files were checked, and the package's final check skips that look-up (offline)
        offline = ValidationContext(perform_io_checks=not maintainers)
        with offline:
            people = [bm.Maintainer(github_user=m) for m in maintainers]
            descr = descr.model_copy(update={"maintainers": people}) if people else descr
            built = tmp / "package.zip"
            save_bioimageio_package(descr, output_path=built)
        final = atomic_write(out, lambda fh: fh.write(built.read_bytes()))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "out": str(final),
        "name": name,
        "weights": ["pytorch_state_dict", "torchscript"] + (["onnx"] if onnx_ok else []),
        "onnx": onnx_ok,
        "onnx_note": onnx_note,
        "test_shape": list(x_raw.shape),
        "min_size": min_side,
        "step": multiple,
        "classes": list(ckpt.class_names),
        "dataset": dataset,
        "license": license,
        "authors": authors,
        "maintainers": maintainers,
        "version": version,
        "halo": halo,
    }


def output_halo(patch_size: int, multiple: int) -> int:
    """Pixels a tiled consumer crops from each side of an output block: SegDash's own tile overlap (a
    quarter of the training patch, the tile it predicts with), rounded up to the input multiple so that
    blocks stay aligned with the network's pooling grid."""
    return max(multiple, -(-int(patch_size) // 4 // multiple) * multiple)


def _channel_id(name: str, i: int) -> str:
    """bioimage.io channel names are identifiers: letters, digits, ``_``, not starting with a digit."""
    ident = re.sub(r"\W", "_", str(name)).strip("_")
    if not ident or ident[0].isdigit():
        ident = f"class{i}_{ident}".rstrip("_")
    return ident[:32]


def _validation_text(exc: BaseException) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in errors()]
            return "; ".join(parts)[:800]
        except Exception:  # noqa: BLE001
            pass
    return " ".join(str(exc).split())[:800]


def test_package(path: str | Path) -> dict[str, Any]:
    """Run ``bioimageio.core``'s ``test_model`` on a package (loads it, runs the weights on the test
    input, compares with the test output) and return ``{status, details}``; no network needed."""
    from bioimageio.core import test_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
        summary = test_model(str(path))
    failed = [f"{d.name}: {'; '.join(str(e.msg) for e in d.errors)}" for d in summary.details if d.status == "failed"]
    return {"status": summary.status, "failed": failed}


test_package.__test__ = False  # not a pytest test despite its name
