"""core.workspace / core.catalog: datasets, versioned masks with undo, concurrency, runs."""

import threading

import numpy as np
import pytest

from core.workspace import Workspace, default_root


@pytest.fixture
def ws(tmp_path):
    w = Workspace(tmp_path / "ws")
    images = np.arange(3 * 6 * 8, dtype=np.uint16).reshape(3, 6, 8)
    masks = [np.eye(6, 8, dtype=np.uint8), None, None]
    w.create_dataset("d", images, masks, ["bg", "fg"], ["a", None, "c"])
    return w


def test_dataset_record_and_images_are_memory_mapped(ws):
    info = ws.dataset("d")
    assert info.shape == (3, 6, 8) and info.dtype == "uint16"
    assert info.slice_names == ("a", "d_0001", "c")
    assert info.statuses == ("labeled", "unlabeled", "unlabeled")
    assert info.counts()["labeled"] == 1 and info.counts()["slices"] == 3
    stack = ws.read_images("d")
    assert isinstance(stack, np.memmap) and stack.dtype == np.uint16
    assert int(stack[2, 5, 7]) == 3 * 6 * 8 - 1


def test_environment_variable_sets_the_root(monkeypatch, tmp_path):
    monkeypatch.setenv("SEGDASH_WORKSPACE", str(tmp_path / "elsewhere"))
    assert default_root() == (tmp_path / "elsewhere").resolve()
    assert Workspace().root == (tmp_path / "elsewhere").resolve()


def test_save_undo_and_history(ws):
    assert ws.read_mask("d", 1) is None
    m1 = np.ones((6, 8), np.uint8)
    assert ws.save_mask("d", 1, m1, status="labeled") == 1
    m2 = np.zeros((6, 8), np.uint8)
    assert ws.save_mask("d", 1, m2) == 2
    assert ws.dataset("d").statuses[1] == "edited"
    assert ws.undo_mask("d", 1) == 1
    np.testing.assert_array_equal(ws.read_mask("d", 1), m1)
    assert ws.dataset("d").statuses[1] == "labeled"
    assert ws.undo_mask("d", 1) is None
    assert ws.read_mask("d", 1) is None and ws.dataset("d").statuses[1] == "unlabeled"
    with pytest.raises(ValueError, match="nothing|no mask version"):
        ws.undo_mask("d", 1)
    # undone versions are kept on disk: nothing is lost
    assert len(list((ws.dataset_dir("d") / "masks").glob("00001.v*.png"))) == 2
    assert ws.save_mask("d", 1, m2) == 3


def test_save_refuses_bad_masks(ws):
    with pytest.raises(ValueError, match="shape"):
        ws.save_mask("d", 0, np.zeros((5, 8), np.uint8))
    with pytest.raises(ValueError, match="class indices"):
        ws.save_mask("d", 0, np.full((6, 8), 2, np.uint8))
    with pytest.raises(ValueError, match="out of range"):
        ws.save_mask("d", 7, np.zeros((6, 8), np.uint8))
    with pytest.raises(ValueError, match="no dataset named 'x'"):
        ws.dataset("x")


def test_two_sessions_saving_at_once_lose_nothing(ws):
    other = Workspace(ws.root)  # a second browser session: its own catalog connection
    errors = []

    def save(w, z, value):
        try:
            for _ in range(10):
                w.save_mask("d", z, np.full((6, 8), value, np.uint8))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(ws, 1, 1)), threading.Thread(target=save, args=(other, 1, 0)),
               threading.Thread(target=save, args=(other, 2, 1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    versions = [r["version"] for r in ws.catalog.history("d", 1)]
    assert versions == list(range(1, 21))
    assert len(ws.catalog.history("d", 2)) == 10


def test_create_refuses_duplicates_and_bad_names(ws):
    with pytest.raises(ValueError, match="exists already"):
        ws.create_dataset("d", np.zeros((1, 2, 2), np.uint8), None, ["a", "b"])
    for bad in ("", "../x", "a/b", "x" * 80, " lead"):
        with pytest.raises(ValueError, match="not valid"):
            ws.create_dataset(bad, np.zeros((1, 2, 2), np.uint8), None, ["a", "b"])
    with pytest.raises(ValueError, match="class 3"):
        ws.create_dataset("e", np.zeros((1, 2, 2), np.uint8), [np.full((2, 2), 3, np.uint8)], ["a", "b"])
    assert not ws.has_dataset("e") and not ws.dataset_dir("e").exists()


def test_rename_delete_and_class_names(ws):
    ws.catalog.create_run("r1", "d", {"x": 1})
    (ws.predictions_dir("d", "r1") / "masks.tif").write_bytes(b"x")
    ws.rename_dataset("d", "d2")
    assert (ws.root / "predictions" / "d2" / "r1" / "masks.tif").exists()
    assert ws.dataset_names() == ["d2"] and ws.read_mask("d2", 0) is not None
    assert ws.catalog.run("r1")["dataset"] == "d2"
    ws.set_class_names("d2", ["background", "mito"])
    assert ws.dataset("d2").class_names == ("background", "mito")
    with pytest.raises(ValueError):
        ws.set_class_names("d2", ["one"])
    ws.delete_dataset("d2")
    assert ws.dataset_names() == [] and not ws.dataset_dir("d2").exists()


def test_runs_and_epochs(ws):
    ws.catalog.create_run("r1", "d", {"lr": 0.001})
    ws.catalog.add_epoch("r1", 1, {"val_dice": 0.5})
    ws.catalog.add_epoch("r1", 2, {"val_dice": 0.7})
    ws.catalog.update_run("r1", state="done", best_dice=0.7, extra={"note": "x"})
    run = ws.catalog.run("r1")
    assert run["state"] == "done" and run["config"] == {"lr": 0.001} and run["extra"] == {"note": "x"}
    assert [e["val_dice"] for e in ws.catalog.epochs("r1")] == [0.5, 0.7]
    with pytest.raises(ValueError):
        ws.catalog.update_run("r1", bogus=1)


def test_masks_version_changes_with_edits(ws):
    v1 = ws.masks_version("d")
    ws.save_mask("d", 0, np.zeros((6, 8), np.uint8))
    assert ws.masks_version("d") != v1
