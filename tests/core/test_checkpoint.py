"""core.checkpoint: round trip, resume state, and refusal of foreign or damaged files."""

from __future__ import annotations

import pickle

import pytest
import torch

from core.checkpoint import Checkpoint, load_checkpoint, read_checkpoint_info, save_checkpoint
from core.model import ModelConfig, build_model

CFG = ModelConfig(arch="classic", classic_width=4, n_classes=3)


def _save(path, model=None, **kw):
    model = model or build_model(CFG)
    args = dict(class_names=["bg", "a", "b"], norm_window=(10.0, 200.0), patch_size=64, epoch=3,
                metrics={"val_dice": 0.5}, history=[{"epoch": 1}, {"epoch": 2}, {"epoch": 3}], run_id="r1")
    args.update(kw)
    return save_checkpoint(path, model, CFG, **args)


def test_round_trip_gives_same_outputs(tmp_path):
    torch.manual_seed(0)
    model = build_model(CFG)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.rand(2, 1, 32, 32)
    model(x).mean().backward()
    opt.step()
    model.eval()
    path = _save(tmp_path / "ck.pt", model, optimizer=opt, scheduler={"name": "cosine", "step": 7},
                 extra={"train_slices": [0, 2]})
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]  # no temporary file left
    ck = load_checkpoint(path)
    assert isinstance(ck, Checkpoint) and not ck.model.training
    with torch.no_grad():
        assert torch.allclose(ck.model(x), model(x))
    assert ck.model_config == CFG and ck.class_names == ("bg", "a", "b") and ck.n_classes == 3
    assert ck.norm_window == (10.0, 200.0) and ck.patch_size == 64 and ck.epoch == 3
    assert ck.metrics == {"val_dice": 0.5} and len(ck.history) == 3 and ck.run_id == "r1"
    assert ck.extra == {"train_slices": [0, 2]} and ck.state["scheduler"]["step"] == 7
    opt2 = torch.optim.AdamW(ck.model.parameters(), lr=1e-3)
    opt2.load_state_dict(ck.state["optimizer"])  # resumable
    assert read_checkpoint_info(path)["epoch"] == 3


def test_class_names_must_match_model(tmp_path):
    with pytest.raises(ValueError, match="class names"):
        _save(tmp_path / "x.pt", class_names=["a", "b"])


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_foreign_and_damaged_files_raise_value_error(tmp_path):
    good = _save(tmp_path / "good.pt")
    cases = {}
    cases["plain.pt"] = lambda p: torch.save({"state_dict": {"w": torch.zeros(1)}}, p)
    cases["tensor.pt"] = lambda p: torch.save(torch.zeros(3), p)
    cases["garbage.pt"] = lambda p: p.write_bytes(b"not a checkpoint at all" * 10)
    cases["truncated.pt"] = lambda p: p.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    cases["pickle.pt"] = lambda p: p.write_bytes(pickle.dumps(ValueError("x")))
    cases["object.pt"] = lambda p: torch.save({"format": "segdash-checkpoint", "obj": ValueError("x")}, p)
    cases["empty.pt"] = lambda p: p.write_bytes(b"")
    for name, make in cases.items():
        p = tmp_path / name
        make(p)
        with pytest.raises(ValueError) as err:
            load_checkpoint(p)
        assert name in str(err.value)
    with pytest.raises(ValueError, match="missing keys"):
        load_checkpoint(tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="no such"):
        load_checkpoint(tmp_path / "missing.pt")


def test_weights_that_do_not_fit_the_config(tmp_path):
    path = _save(tmp_path / "ck.pt")
    obj = torch.load(path, weights_only=True)
    obj["model_config"]["classic_width"] = 8
    torch.save(obj, path)
    with pytest.raises(ValueError, match="do not fit"):
        load_checkpoint(path)
