"""core.store.workspace / core.store.catalog: datasets, versioned masks with undo, concurrency, runs."""

import threading

import numpy as np
import pytest

from core.store.workspace import Workspace, default_root


@pytest.fixture
def ws(ws):
    """The shared empty workspace (conftest) with a dataset 'd': 3 slices, slice 0 labeled."""
    w = ws
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

    threads = [
        threading.Thread(target=save, args=(ws, 1, 1)),
        threading.Thread(target=save, args=(other, 1, 0)),
        threading.Thread(target=save, args=(other, 2, 1)),
    ]
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


# -- versions: history, undo/redo along it, restore, never lost --------------------------------


def test_undo_past_imported_mask_keeps_it_reachable(ws):
    imported = ws.read_mask("d", 0)
    assert [(v.version, v.source, v.current) for v in ws.mask_history("d", 0)] == [(1, "imported", True)]
    assert ws.undo_mask("d", 0) is None and ws.read_mask("d", 0) is None
    assert ws.can_redo("d", 0) and ws.redo_mask("d", 0) == 1
    np.testing.assert_array_equal(ws.read_mask("d", 0), imported)
    ws.undo_mask("d", 0)
    drawn = np.ones((6, 8), np.uint8)
    assert ws.save_mask("d", 0, drawn, status="labeled") == 2
    # the imported version is still listed, viewable and restorable
    hist = ws.mask_history("d", 0)
    assert [(v.version, v.source, v.parent, v.current) for v in hist] == [
        (1, "imported", 0, False),
        (2, "drawn", 0, True),
    ]
    np.testing.assert_array_equal(ws.read_mask("d", 0, version=1), imported)
    assert ws.restore_mask("d", 0, 1) == 3
    np.testing.assert_array_equal(ws.read_mask("d", 0), imported)
    assert ws.mask_history("d", 0)[-1].source == "restored:v1" and ws.dataset("d").statuses[0] == "labeled"
    # undo of the restore goes back to what it was made from; redo returns
    assert ws.undo_mask("d", 0) == 2 and ws.redo_mask("d", 0) == 3
    assert not ws.can_redo("d", 0)
    with pytest.raises(ValueError, match="^Nothing to redo on slice "):  # worded as the Label page's "Nothing to undo"
        ws.redo_mask("d", 0)
    with pytest.raises(ValueError, match="no mask version 9"):
        ws.restore_mask("d", 0, 9)
    versions = [p for p in (ws.dataset_dir("d") / "masks").glob("00000.v*.png") if not p.name.endswith(".src.png")]
    assert len(versions) == 3  # append-only (provenance files, *.src.png, sit beside some)


def test_undo_follows_what_a_version_was_drawn_on(ws):
    a, b, c = (np.full((6, 8), v, np.uint8) for v in (1, 0, 1))
    ws.save_mask("d", 1, a, status="labeled")  # v1
    ws.save_mask("d", 1, b)  # v2 on v1
    ws.undo_mask("d", 1)  # back to v1
    ws.save_mask("d", 1, c)  # v3 on v1
    assert ws.undo_mask("d", 1) == 1  # not to v2: v3 was drawn on v1
    assert ws.redo_mask("d", 1) == 3  # the newest made from v1
    assert [v.version for v in ws.mask_history("d", 1)] == [1, 2, 3]


def test_save_names_its_base_version_and_refuses_a_stale_one(ws):
    from core.store.workspace import MaskConflict

    assert ws.save_mask("d", 1, np.ones((6, 8), np.uint8), base_version=0) == 1
    with pytest.raises(MaskConflict, match="someone saved .* meanwhile .*reload"):
        ws.save_mask("d", 1, np.zeros((6, 8), np.uint8), base_version=0)
    np.testing.assert_array_equal(ws.read_mask("d", 1), np.ones((6, 8), np.uint8))
    assert len(ws.mask_history("d", 1)) == 1
    # D's Accept keeps working with the old signature, and a source of its own
    assert ws.save_mask("d", 1, np.zeros((6, 8), np.uint8), status="from-prediction", source="accepted:run-0001") == 2
    assert ws.mask_history("d", 1)[-1].source == "accepted:run-0001"


def _stroke(rows):
    def edit(mask):
        out = np.zeros((6, 8), np.uint8) if mask is None else mask
        out[rows] = 1
        return out

    return edit


def test_two_overlapping_saves_keep_both_strokes(ws):
    """Two writers read version 0, wait for each other (a barrier), then save at once: both strokes land."""
    barrier = threading.Barrier(2)
    results, errors = {}, []

    def writer(name, rows):
        try:
            base = ws.current_mask_version("d", 2)  # what the page showed when the strokes were drawn
            barrier.wait(timeout=10)
            results[name] = ws.edit_mask("d", 2, _stroke(rows), base_version=base)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=writer, args=("a", slice(0, 2))),
        threading.Thread(target=writer, args=("b", slice(4, 6))),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(r.version for r in results.values()) == [1, 2]
    assert sum(r.merged for r in results.values()) == 1  # the later one landed on the other's version
    mask = ws.read_mask("d", 2)
    assert mask[0:2].all() and mask[4:6].all() and not mask[2:4].any()


def test_read_modify_write_holds_the_lock_while_the_other_writer_waits(ws):
    """Writer A is between its read and its write when B saves: B waits and keeps A's strokes."""
    a_has_read, b_started = threading.Event(), threading.Event()

    def slow_edit(mask):
        a_has_read.set()
        assert b_started.wait(10)
        import time

        time.sleep(0.3)  # B is now trying to save
        return _stroke(slice(0, 2))(mask)

    a = threading.Thread(target=lambda: ws.edit_mask("d", 2, slow_edit, base_version=0))
    a.start()
    assert a_has_read.wait(10)
    b_started.set()
    saved = ws.edit_mask("d", 2, _stroke(slice(4, 6)), base_version=0)
    a.join()
    assert saved.version == 2 and saved.merged
    mask = ws.read_mask("d", 2)
    assert mask[0:2].all() and mask[4:6].all()


def test_workspace_from_before_version_sources_opens_and_keeps_its_history(tmp_path):
    """A catalog with the first mask_versions schema (no source, no parent) is migrated on open."""
    import sqlite3

    w = Workspace(tmp_path / "old")
    w.create_dataset("d", np.zeros((2, 4, 4), np.uint8), [np.ones((4, 4), np.uint8), None], ["bg", "fg"])
    w.save_mask("d", 0, np.zeros((4, 4), np.uint8))
    w.save_mask("d", 1, np.ones((4, 4), np.uint8), status="from-prediction")
    del w
    con = sqlite3.connect(tmp_path / "old" / "catalog.sqlite")
    con.executescript("""
        CREATE TABLE mv_old (dataset TEXT NOT NULL, z INTEGER NOT NULL, version INTEGER NOT NULL,
            status TEXT NOT NULL, file TEXT NOT NULL, created REAL NOT NULL, undone INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (dataset, z, version));
        INSERT INTO mv_old SELECT dataset, z, version, status, file, created, undone FROM mask_versions;
        DROP TABLE mask_versions;
        ALTER TABLE mv_old RENAME TO mask_versions;
    """)
    con.close()
    w = Workspace(tmp_path / "old")
    assert [(v.version, v.source, v.parent, v.current) for v in w.mask_history("d", 0)] == [
        (1, "imported", 0, False),
        (2, "drawn", 1, True),
    ]
    assert [v.source for v in w.mask_history("d", 1)] == ["accepted"]
    assert w.undo_mask("d", 0) == 1 and w.read_mask("d", 0).all()
    assert w.save_mask("d", 0, np.zeros((4, 4), np.uint8)) == 3  # new rows insert into the migrated table
