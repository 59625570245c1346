"""Data page: import from a server path (with the channel and threshold questions), browse, manage."""

import io
import zipfile

import numpy as np
import pytest
import tifffile
from PIL import Image
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


@pytest.fixture(autouse=True)
def roots(tmp_path, monkeypatch):
    """Server paths are imported only from SEGDASH_IMPORT_ROOTS; here the test's own folder."""
    monkeypatch.setenv("SEGDASH_IMPORT_ROOTS", str(tmp_path))


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


# -- refusals on the page, questions, uploads (issue 10 points 5-7, issue 11 point 3) ------------


def _png_bytes(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _errors(at) -> str:
    return " ".join(e.value for e in at.error)


def test_refusal_reason_is_an_error_on_the_page(ws_env, page, make_dataset, tmp_path):
    make_dataset("tiny")
    (tmp_path / "notes.png").write_text("not an image")
    at = _import(_open(page), "bad", tmp_path / "notes.png")
    assert "notes.png: not a valid PNG image" in _errors(at)
    assert not at.get("expandable") or all("failed" not in str(e.label) for e in at.get("expandable"))
    at.slider(key="data_alpha").set_value(0.5).run()  # the reason stays until the next import
    assert "notes.png" in _errors(at)


def test_uploaded_text_as_png_names_the_upload(ws_env, page, make_dataset):
    make_dataset("tiny")
    at = _open(page)
    at.text_input(key="data_name").input("up")
    at.file_uploader(key="data_images").upload("photo.png", b"typed notes, not pixels", "image/png")
    at.button(key="data_import").click().run()
    assert not at.exception
    text = _errors(at)
    assert "photo.png: not a valid PNG image" in text and "BytesIO" not in text


def test_server_path_outside_the_roots_gets_one_message(ws_env, page, make_dataset, tmp_path, monkeypatch):
    make_dataset("tiny")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    monkeypatch.setenv("SEGDASH_IMPORT_ROOTS", str(inbox))
    tifffile.imwrite(tmp_path / "secret.tif", np.arange(64, dtype=np.uint8).reshape(1, 8, 8), photometric="minisblack")
    (inbox / "link.tif").symlink_to(tmp_path / "secret.tif")
    messages = []
    for p in (
        tmp_path / "secret.tif",
        tmp_path / "missing.tif",
        inbox / ".." / "secret.tif",
        inbox / "link.tif",
        "/etc/passwd",
    ):
        at = _import(_open(page), "peek", p)
        messages.append(_errors(at))
    assert len(set(messages)) == 1 and "outside the folders" in messages[0]
    assert "secret" not in messages[0] and "passwd" not in messages[0]
    assert not ws_env.has_dataset("peek")
    (inbox / "link.tif").unlink()
    (inbox / "ok.tif").write_bytes((tmp_path / "secret.tif").read_bytes())
    _import(_open(page), "inside", inbox / "ok.tif")
    assert ws_env.has_dataset("inside")


def test_uploaded_dataset_export_zip_imports_with_its_masks(ws_env, page, make_dataset, tmp_path):
    from core.workflow.export import export_dataset_zip

    make_dataset("tiny", z=3, labeled=(0, 2), class_names=("bg", "nucleus"))
    export_dataset_zip(ws_env, "tiny", tmp_path / "tiny.zip")
    at = _open(page)
    at.text_input(key="data_name").input("again")
    at.file_uploader(key="data_images").upload("tiny.zip", (tmp_path / "tiny.zip").read_bytes(), "application/zip")
    at.button(key="data_import").click().run()
    assert not at.exception and not at.error, _errors(at)
    info = ws_env.dataset("again")
    assert info.class_names == ("bg", "nucleus") and info.statuses == ("labeled", "unlabeled", "labeled")
    np.testing.assert_array_equal(ws_env.read_mask("again", 2), ws_env.read_mask("tiny", 2))
    buf = io.BytesIO()  # a hand-made ZIP of images/ and masks/ folders
    with zipfile.ZipFile(buf, "w") as zf:
        for n in ("a", "b"):
            zf.writestr(f"images/{n}.png", _png_bytes(np.random.default_rng(0).integers(0, 255, (8, 8), np.uint8)))
        zf.writestr("masks/b.png", _png_bytes(np.eye(8, dtype=np.uint8) * 255))
    at.text_input(key="data_name").input("hand")
    at.file_uploader(key="data_images").set_value(("hand.zip", buf.getvalue(), "application/zip"))
    at.button(key="data_import").click().run()
    assert not at.exception and not at.error, _errors(at)
    assert ws_env.dataset("hand").statuses == ("unlabeled", "labeled")


def test_gapped_mask_values_are_a_question_on_the_page(ws_env, page, make_dataset, tmp_path):
    make_dataset("tiny")
    imgs = np.random.default_rng(0).integers(0, 255, (2, 16, 16), dtype=np.uint8)
    lab = np.zeros((2, 16, 16), np.uint8)
    lab[:, 2:6, 2:6], lab[:, 8:12, 8:12], lab[:, 12:15, 1:4] = 1, 2, 7
    tifffile.imwrite(tmp_path / "i.tif", imgs, photometric="minisblack")
    tifffile.imwrite(tmp_path / "l.tif", lab, photometric="minisblack")
    at = _import(_open(page), "gap", tmp_path / "i.tif", tmp_path / "l.tif")
    assert not ws_env.has_dataset("gap")
    assert any("0, 1, 2, 7" in w.value and "gaps" in w.value for w in at.warning)
    at.checkbox(key="data_remap").check()
    at.button(key="data_import").click().run()
    assert not at.exception and ws_env.dataset("gap").n_classes == 4
    assert ws_env.read_mask("gap", 0)[13, 2] == 3


def test_binary_images_and_planar_tiff_are_questions_on_the_page(ws_env, page, make_dataset, tmp_path):
    make_dataset("tiny")
    binary = np.zeros((2, 16, 16), np.uint8)
    binary[:, 4:9, 4:9] = 255
    tifffile.imwrite(tmp_path / "looks_like_mask.tif", binary, photometric="minisblack")
    at = _import(_open(page), "bin", tmp_path / "looks_like_mask.tif")
    assert any("only two values" in w.value for w in at.warning) and not ws_env.has_dataset("bin")
    at.checkbox(key="data_binary_ok").check()
    at.button(key="data_import").click().run()
    assert not at.exception and ws_env.has_dataset("bin")

    planes = np.random.default_rng(0).integers(0, 255, (3, 16, 16), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "planar.tif", planes, photometric="rgb", planarconfig="separate")
    at = _import(_open(page), "pl", tmp_path / "planar.tif")
    assert any("3 planes" in w.value for w in at.warning) and not ws_env.has_dataset("pl")
    assert at.radio(key="data_as_stack").value == "slices"
    at.button(key="data_import").click().run()
    assert not at.exception and ws_env.dataset("pl").shape == (3, 16, 16)
    at = _import(_open(page), "pl_colour", tmp_path / "planar.tif")
    at.radio(key="data_as_stack").set_value("colour")
    at.button(key="data_import").click().run()
    assert not at.exception and ws_env.dataset("pl_colour").shape == (1, 16, 16)


def test_several_series_and_a_trailing_axis_of_one_are_questions_on_the_page(ws_env, page, make_dataset, tmp_path):
    make_dataset("tiny")
    with tifffile.TiffWriter(tmp_path / "two.tif") as tif:
        tif.write(np.zeros((8, 8), np.uint16))
        tif.write(np.random.default_rng(0).integers(0, 255, (3, 16, 16), dtype=np.uint8), photometric="minisblack")
    at = _import(_open(page), "two", tmp_path / "two.tif")
    assert any("2 image series" in w.value for w in at.warning) and not ws_env.has_dataset("two")
    at.selectbox(key="data_series").set_value(1)
    at.button(key="data_import").click().run()
    assert not at.exception and ws_env.dataset("two").shape == (3, 16, 16)
    tifffile.imwrite(tmp_path / "one.tif", np.random.default_rng(0).random((5, 40, 1)).astype(np.float32))
    at = _import(_open(page), "one", tmp_path / "one.tif")
    assert any("shape (5, 40, 1)" in w.value for w in at.warning) and not ws_env.has_dataset("one")
    radio = at.radio(key="data_as_stack")
    assert list(radio.options) == ["5 slices of 40 x 1", "one 5 x 40 image"]
    radio.set_value("colour")
    at.button(key="data_import").click().run()
    assert not at.exception and ws_env.dataset("one").shape == (1, 5, 40)


def test_masks_with_a_not_labeled_value_import_as_partial(ws_env, page, make_dataset, tmp_path):
    """Strokes made elsewhere (here: 0 = not labeled, 1 = background, 2 = cell, as ilastik exports
    them) come in as partial masks when the page is told which value means "not labeled"."""
    make_dataset("tiny")
    imgs = np.random.default_rng(0).integers(0, 255, (2, 16, 16), dtype=np.uint8)
    lab = np.zeros((2, 16, 16), np.uint8)
    lab[:, 2, 2:10], lab[:, 9, 3:12] = 1, 2
    tifffile.imwrite(tmp_path / "i.tif", imgs, photometric="minisblack")
    tifffile.imwrite(tmp_path / "l.tif", lab, photometric="minisblack")
    at = _open(page)
    at.number_input(key="data_unlabeled").set_value(0)
    _import(at, "strokes", tmp_path / "i.tif", tmp_path / "l.tif")
    assert any("1, 2" in w.value and "gaps" in w.value for w in at.warning)  # classes 1 and 2, no 0: asked
    at.checkbox(key="data_remap").check()
    at.button(key="data_import").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    info = ws_env.dataset("strokes")
    assert info.coverage == ("partial", "partial")
    mask = ws_env.read_mask("strokes", 0)
    assert (mask == 255).sum() == 16 * 16 - 8 - 9  # everything but the strokes is not labeled
    assert set(np.unique(mask[mask != 255]).tolist()) == {0, 1}  # 1 -> background, 2 -> cell
