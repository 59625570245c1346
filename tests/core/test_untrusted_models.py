"""Model files from outside the workspace are data, never code (issue 25.1): a bioimage.io package is
rebuilt from its state dict and SegDash's own network; its TorchScript, a program that can read and
write files, runs only when the user opts in (``--trust-code``). A ``config.segdash`` section proves
nothing: the hostile packages here carry one."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
import yaml

from core.data.intensity import normalize
from core.nn.checkpoint import load_checkpoint, save_checkpoint
from core.nn.model import ModelConfig, build_model
from core.predict.config import PredictConfig
from core.predict.stack import predict_stack
from core.store.workspace import Workspace
from core.workflow.model_export import export_bioimageio
from tests.synthetic import discs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hostile_models import file_writing_torchscript  # noqa: E402 - a helper beside this file

ROOT = Path(__file__).resolve().parents[2]
PRECIOUS = b"precious annotation hours\n"


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("ws"))
    rng = np.random.default_rng(7)
    pairs = [discs(rng, 96, 128) for _ in range(3)]
    ws.create_dataset("toy", np.stack([p[0] for p in pairs]), [p[1] for p in pairs], class_names=["bg", "cell"])
    return ws


def segdash_checkpoint(ws: Workspace, path: Path, decision: dict | None = None) -> Path:
    """An untrained classic U-Net whose logits are centred on the data (both classes predicted)."""
    torch.manual_seed(11)
    cfg = ModelConfig(arch="classic", classic_width=4)
    model = build_model(cfg).eval()
    with torch.no_grad():
        x = torch.from_numpy(normalize(ws.read_slice("toy", 0)[:96, :96], (40.0, 220.0)))[None, None]
        model.head.bias -= model(x).median()
    return save_checkpoint(
        path,
        model,
        cfg,
        class_names=["background", "cell"],
        norm_window=(40.0, 220.0),
        patch_size=32,
        epoch=1,
        metrics={},
        run_id="toy-run",
        extra={"dataset": "toy", "val_slices": [1], "train_slices": [0, 2]},
        decision=decision,
    )


@pytest.fixture(scope="module")
def exported(ws, tmp_path_factory):
    d = tmp_path_factory.mktemp("exported")
    ck = segdash_checkpoint(ws, d / "best.pt")
    pkg = Path(export_bioimageio(ck, d / "model.zip", workspace=ws, authors=["Ann Example"], onnx=False)["out"])
    with zipfile.ZipFile(pkg) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    return ck, pkg, members


def repack(path: Path, members: dict[str, bytes], torchscript: bytes, *, state_dict: bool) -> Path:
    """``members`` with their TorchScript replaced (its SHA-256 in rdf.yaml updated, as an attacker
    would) and, unless ``state_dict``, the state dict weights gone; ``config.segdash`` kept."""
    rdf = yaml.safe_load(members["rdf.yaml"])
    rdf["weights"]["torchscript"]["sha256"] = hashlib.sha256(torchscript).hexdigest()
    if not state_dict:
        del rdf["weights"]["pytorch_state_dict"]
        rdf["weights"]["torchscript"].pop("parent", None)
    assert "segdash" in rdf["config"]  # the forged mark of origin that is not trusted
    with zipfile.ZipFile(path, "w") as zf:
        dropped = {"weights_torchscript.pt", "rdf.yaml"} | (set() if state_dict else {"weights_state_dict.pt"})
        for name, data in members.items():
            if name not in dropped:
                zf.writestr(name, data)
        zf.writestr("weights_torchscript.pt", torchscript)
        zf.writestr("rdf.yaml", yaml.safe_dump(rdf))
    return path


@pytest.fixture
def victim(tmp_path):
    path = tmp_path / "victim.txt"
    path.write_bytes(PRECIOUS)
    return path


def _cli(*args, ws):
    env = {**os.environ, "SEGDASH_WORKSPACE": str(ws), "PYTHONPATH": str(ROOT)}
    env.pop("SEGDASH_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "core", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600
    )


def test_the_hostile_torchscript_really_writes_the_file(victim, tmp_path):
    file_writing_torchscript(victim, tmp_path / "evil.pt")
    torch.jit.load(str(tmp_path / "evil.pt"))(torch.zeros(1, 1, 16, 16))
    assert victim.read_bytes().startswith(b"XXXXXXXX")  # what every other test here must prevent


def test_a_torchscript_only_package_is_refused_and_nothing_is_written(exported, victim, tmp_path):
    _, _, members = exported
    evil = repack(tmp_path / "evil.zip", members, file_writing_torchscript(victim, tmp_path / "e.pt"), state_dict=False)
    with pytest.raises(ValueError, match=r"TorchScript\) are a program .* --trust-code"):
        load_checkpoint(evil)
    assert victim.read_bytes() == PRECIOUS
    trusted = load_checkpoint(evil, trust_code=True)  # the user's opt-in: it runs as the code it is
    assert victim.read_bytes() == PRECIOUS  # loading alone ran nothing of it
    trusted.model(torch.zeros(1, 1, 16, 16))
    assert victim.read_bytes().startswith(b"XXXXXXXX")


def test_a_package_with_state_dict_weights_never_loads_its_torchscript(ws, exported, victim, tmp_path):
    ck, _, members = exported
    evil = repack(tmp_path / "evil.zip", members, file_writing_torchscript(victim, tmp_path / "e.pt"), state_dict=True)
    original, loaded = load_checkpoint(ck), load_checkpoint(evil)
    assert loaded.extra["weights"] == "pytorch_state_dict" and type(loaded.model) is type(original.model)
    stack = ws.read_images("toy")
    cfg = PredictConfig(tile=64, overlap=0.25)
    a = predict_stack(original, stack, out_masks=tmp_path / "a.tif", out_prob=tmp_path / "ap.tif", cfg=cfg)
    b = predict_stack(loaded, stack, out_masks=tmp_path / "b.tif", out_prob=tmp_path / "bp.tif", cfg=cfg)
    ma = tifffile.imread(a.masks_path)
    assert len(np.unique(ma)) == 2 and np.array_equal(ma, tifffile.imread(b.masks_path))
    assert np.array_equal(tifffile.imread(a.prob_path), tifffile.imread(b.prob_path))
    assert victim.read_bytes() == PRECIOUS


def test_state_dict_weights_of_another_architecture_fall_back_to_the_refusal(exported, tmp_path):
    _, _, members = exported
    rdf = yaml.safe_load(members["rdf.yaml"])
    rdf["weights"]["pytorch_state_dict"]["architecture"]["kwargs"]["classic_width"] = 8  # not what SegDash builds
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in {**members, "rdf.yaml": yaml.safe_dump(rdf).encode()}.items():
            zf.writestr(name, data)
    with pytest.raises(ValueError, match="--trust-code"):
        load_checkpoint(path)


def test_pickled_code_in_the_state_dict_is_refused(exported, tmp_path):
    _, _, members = exported

    class Payload:
        def __reduce__(self):
            return (os.system, ("true",))

    import io
    import pickle

    buf = io.BytesIO()
    torch.save({"net.head.weight": Payload()}, buf, pickle_module=pickle)
    rdf = yaml.safe_load(members["rdf.yaml"])
    rdf["weights"]["pytorch_state_dict"]["sha256"] = hashlib.sha256(buf.getvalue()).hexdigest()
    path = tmp_path / "pickled.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in {**members, "rdf.yaml": yaml.safe_dump(rdf).encode()}.items():
            zf.writestr(name, buf.getvalue() if name == "weights_state_dict.pt" else data)
    with pytest.raises(ValueError, match="cannot load the state dict weights as plain tensors"):
        load_checkpoint(path)


@pytest.mark.slow  # two subprocesses, each importing torch
def test_cli_refuses_foreign_torchscript_unless_trusted(ws, exported, victim, tmp_path):
    _, _, members = exported
    evil = repack(tmp_path / "evil.zip", members, file_writing_torchscript(victim, tmp_path / "e.pt"), state_dict=False)
    tifffile.imwrite(tmp_path / "in.tif", ws.read_images("toy"), photometric="minisblack")
    args = ["predict", "--checkpoint", str(evil), "--input", str(tmp_path / "in.tif"), "--out", str(tmp_path / "m.tif")]
    out = _cli(*args, ws=ws.root)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert "--trust-code" in lines[0] and "Traceback" not in out.stderr
    assert victim.read_bytes() == PRECIOUS and not (tmp_path / "m.tif").exists()
    out = _cli(*args, "--trust-code", ws=ws.root)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["slices"] == 3
    assert victim.read_bytes().startswith(b"XXXXXXXX")  # opted in: it ran, as the help says it may


@pytest.mark.parametrize(
    "cfg",
    [
        ModelConfig(arch="classic", classic_width=4, n_classes=3, deep_supervision=True),
        ModelConfig(arch="Unet", encoder="resnet18", encoder_depth=3, attention="scse"),
    ],
    ids=["classic", "smp"],
)
def test_the_packaged_architecture_file_builds_segdash_s_network(cfg):
    """``segdash_unet.py`` (what bioimageio.core and BiaPy run; SegDash never does) builds the network
    SegDash builds from its own code: same state dict keys, same probabilities."""
    from core.nn.bioimageio import Probabilities
    from core.nn.package_arch import ARCH_CALLABLE, arch_kwargs, arch_source, packaged_model

    namespace: dict = {}
    exec(compile(arch_source(), "segdash_unet.py", "exec"), namespace)  # noqa: S102 - SegDash's own source
    theirs = namespace[ARCH_CALLABLE](**arch_kwargs(cfg)).eval()
    torch.manual_seed(0)
    ours = packaged_model(cfg).eval()
    state = ours.state_dict()
    assert list(theirs.state_dict()) == list(state)
    theirs.load_state_dict(state, strict=True)
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        assert torch.allclose(theirs(x), Probabilities(ours.net, cfg.binary)(x), atol=1e-6)
