"""core.nn.checkpoint: round trip, resume state, and refusal of foreign or damaged files."""

from __future__ import annotations

import pickle

import pytest
import torch

from core.nn.checkpoint import Checkpoint, load_checkpoint, read_checkpoint_info, save_checkpoint
from core.nn.model import ModelConfig, build_model

CFG = ModelConfig(arch="classic", classic_width=4, n_classes=3)


def _save(path, model=None, **kw):
    model = model or build_model(CFG)
    args = dict(
        class_names=["bg", "a", "b"],
        norm_window=(10.0, 200.0),
        patch_size=64,
        epoch=3,
        metrics={"val_dice": 0.5},
        history=[{"epoch": 1}, {"epoch": 2}, {"epoch": 3}],
        run_id="r1",
    )
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
    path = _save(
        tmp_path / "ck.pt",
        model,
        optimizer=opt,
        scheduler={"name": "cosine", "step": 7},
        extra={"train_slices": [0, 2]},
    )
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


# -- bundle.zip as a checkpoint, and fit warnings --------------------------------------------------


def test_a_bundle_zip_is_read_for_its_model_pt(tmp_path):
    import zipfile

    good = _save(tmp_path / "best.pt", extra={"dataset": "cells"})
    bundle = tmp_path / "bundle.zip"
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.writestr("config.json", "{}")
        zf.write(good, "model.pt")
    ck = load_checkpoint(bundle)
    assert ck.class_names == ("bg", "a", "b") and ck.norm_window == (10.0, 200.0) and ck.path == bundle
    assert read_checkpoint_info(bundle)["extra"]["dataset"] == "cells"
    ref = load_checkpoint(good)
    for k, v in ref.model.state_dict().items():
        assert torch.equal(ck.model.state_dict()[k], v)


def test_a_zip_without_one_checkpoint_is_refused_with_a_hint(tmp_path):
    import zipfile

    good = _save(tmp_path / "best.pt")
    empty_bundle = tmp_path / "bundle.zip"
    with zipfile.ZipFile(empty_bundle, "w") as zf:
        zf.writestr("config.json", "{}")
        zf.writestr("metrics.csv", "")
    with pytest.raises(ValueError, match=r"bundle\.zip: a ZIP without a checkpoint inside \(a reproducibility bundle"):
        load_checkpoint(empty_bundle)
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as zf:
        zf.write(good, "run/best.pt")
        zf.write(good, "run/last.pt")
    with pytest.raises(
        ValueError, match=r"two\.zip: a ZIP with several checkpoints inside \(run/best\.pt, run/last\.pt\)"
    ):
        load_checkpoint(two)
    one = tmp_path / "one.zip"
    with zipfile.ZipFile(one, "w") as zf:
        zf.write(good, "weights/best.pt")
    assert load_checkpoint(one).epoch == 3  # a single checkpoint inside is read
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(broken, "w") as zf:
        zf.writestr("model.pt", b"garbage" * 10)
    with pytest.raises(ValueError, match=r"broken\.zip \(model\.pt\): (cannot read|not a SegDash)"):
        load_checkpoint(broken)


def test_fit_warnings_flag_classes_dataset_and_intensity():
    import numpy as np

    from core.nn.fit import fit_warnings, intensity_warning

    info = {"class_names": ["bg", "cell"], "norm_window": [20.0, 220.0], "extra": {"dataset": "isbi"}}
    rng = np.random.default_rng(0)
    fits = rng.integers(15, 230, (3, 32, 32)).astype(np.uint8)
    assert fit_warnings(info, images=fits, class_names=["bg", "cell"], dataset="isbi") == []
    assert fit_warnings(info) == []
    w = fit_warnings(info, class_names=["cell", "bg"])
    assert len(w) == 1 and "another order" in w[0]
    w = fit_warnings(info, class_names=["bg", "membrane"])
    assert len(w) == 1 and "(bg, cell)" in w[0] and "(bg, membrane)" in w[0]
    w = fit_warnings(info, class_names=["bg", "a", "b"])
    assert "predicts 2 classes" in w[0] and "has 3" in w[0]
    w = fit_warnings(info, dataset="epfl")
    assert len(w) == 1 and "'isbi', not on 'epfl'" in w[0]
    w16 = intensity_warning((20.0, 220.0), fits.astype(np.uint16) * 200)  # 16-bit data, 8-bit model
    assert "uint16" in w16 and "8-bit-range" in w16 and "white" in w16
    w8 = intensity_warning((100.0, 30000.0), fits)  # 8-bit data, 16-bit model
    assert "trained on data beyond 8 bits" in w8 and "black" in w8
    assert "little contrast" in intensity_warning((0.0, 255.0), rng.integers(120, 150, (32, 32)).astype(np.uint8))
    assert "white" in intensity_warning((0.0, 100.0), rng.integers(90, 100, (32, 32)).astype(np.uint8))
    assert "saturated" in intensity_warning((100.0, 110.0), rng.integers(0, 255, (32, 32)).astype(np.uint8))
    assert intensity_warning((0.0, 1.0), rng.random((32, 32)).astype(np.float32)) is None
