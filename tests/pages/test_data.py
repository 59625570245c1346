"""Data page: import from a server path (with the channel and threshold questions), browse, manage."""

import numpy as np
import tifffile
from streamlit.testing.v1 import AppTest


def _open(page) -> AppTest:
    at = AppTest.from_file(page("data.py"), default_timeout=60).run()
    assert not at.exception
    return at


def _import(at: AppTest, name: str, path, mask_path="") -> AppTest:
    at.text_input(key="data_name").input(name)
    at.text_input(key="data_path").input(str(path))
    at.text_input(key="data_mask_path").input(str(mask_path))
    at.button(key="data_import").click().run()
    assert not at.exception
    return at


def test_import_from_server_path_selects_new_dataset(ws_env, page, make_dataset, tmp_path):
    make_dataset("tiny")
    stack = (np.random.default_rng(0).random((4, 24, 20)) * 1000).astype(np.uint16)
    masks = np.zeros((4, 24, 20), np.uint8)
    masks[:, 5:10, 5:10] = 255
    tifffile.imwrite(tmp_path / "stack.tif", stack, photometric="minisblack")
    tifffile.imwrite(tmp_path / "masks.tif", masks, photometric="minisblack")
    at = _open(page)
    for key in ("data_name", "data_classes", "data_path", "data_mask_path"):
        assert at.text_input(key=key) is not None
    assert at.button(key="data_import") is not None
    at.text_input(key="data_classes").input("background, nucleus")
    _import(at, "stack1", tmp_path / "stack.tif", tmp_path / "masks.tif")
    assert "stack1" in ws_env.dataset_names()
    info = ws_env.dataset("stack1")
    assert info.shape == (4, 24, 20) and info.class_names == ("background", "nucleus")
    assert info.counts()["labeled"] == 4
    assert at.sidebar.selectbox(key="_dataset_box").value == "stack1"
    assert any("Imported" in s.value for s in at.success)
    assert at.slider(key="data_z").max == 3


def test_import_asks_for_channel_then_threshold(ws_env, page, make_dataset, tmp_path):
    make_dataset("tiny")
    hyper = (np.random.default_rng(1).random((2, 3, 16, 16)) * 255).astype(np.uint8)  # Z, C, Y, X
    tifffile.imwrite(tmp_path / "hyper.tif", hyper, imagej=True, metadata={"axes": "ZCYX"})
    soft = np.zeros((2, 16, 16), np.uint8)
    soft[:, 4:12, 4:12] = 255
    soft[:, 4, 4:12] = 128  # anti-aliased edge
    soft[:, 11, 4:12] = 37
    tifffile.imwrite(tmp_path / "soft.tif", soft, photometric="minisblack")
    at = _import(_open(page), "hyper1", tmp_path / "hyper.tif", tmp_path / "soft.tif")
    assert not ws_env.has_dataset("hyper1")
    assert any("channel" in w.value for w in at.warning)
    at.number_input(key="data_channel").set_value(2)
    at.button(key="data_import").click().run()
    assert not at.exception and not ws_env.has_dataset("hyper1")
    assert any("Threshold" in w.value or "threshold" in w.value for w in at.warning)
    at.number_input(key="data_threshold").set_value(100.0)
    at.button(key="data_import").click().run()
    assert not at.exception
    assert ws_env.has_dataset("hyper1")
    m = ws_env.read_mask("hyper1", 0)
    assert m[4, 5] == 1 and m[11, 5] == 0  # 128 > 100 kept, 37 dropped
    assert np.array_equal(ws_env.read_slice("hyper1", 1), hyper[1, 2])


def test_import_error_is_shown_not_raised(ws_env, page, make_dataset, tmp_path):
    make_dataset("tiny")
    at = _import(_open(page), "nope", tmp_path / "missing.tif")
    assert at.error and "no such file" in at.error[0].value


def test_browse_rename_classes_and_delete(ws_env, page, make_dataset):
    make_dataset("tiny", z=3, labeled=(0,))
    at = _open(page)
    assert at.slider(key="data_z").value == 0 and at.slider(key="data_alpha") is not None
    at.slider(key="data_z").set_value(2).run()
    assert not at.exception
    # class names
    at.text_input(key="data_edit_classes").input("bg, nucleus").run()
    at.button(key="data_save_classes").click().run()
    assert ws_env.dataset("tiny").class_names == ("bg", "nucleus")
    # rename is disabled until confirmed
    at.text_input(key="data_new_name").input("tiny2").run()
    assert at.button(key="data_rename").disabled
    at.checkbox(key="data_confirm_rename").check().run()
    at.button(key="data_rename").click().run()
    assert not at.exception and ws_env.dataset_names() == ["tiny2"]
    assert at.sidebar.selectbox(key="_dataset_box").value == "tiny2"
    # delete behind a confirmation
    at.checkbox(key="data_confirm_delete").check().run()
    at.button(key="data_delete").click().run()
    assert not at.exception and ws_env.dataset_names() == []
