"""Losing the catalog (issue 25.4): deleted with its WAL, a WAL deleted alone, a damaged file.

The folders hold everything saved, so ``python -m core repair`` puts every dataset, mask version and
run back; an import never deletes a folder it did not create; a save never reuses a version number
whose file exists; a damaged catalog is one message naming the repair; the catalog is copied into
``backups/`` with SQLite's backup API, the last N kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from core.cli import main
from core.data.io import write_png
from core.store.backups import KEEP_ENV, backup_catalog, list_backups
from core.store.catalog import Catalog, CatalogDamaged
from core.store.workspace import Workspace, WorkspaceError
from tests.synthetic import tiny_checkpoint

ROOT = Path(__file__).resolve().parents[2]
DAY = 24 * 3600


def _square(shape=(16, 16), value=1, at=2) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    m[at : at + 5, at : at + 5] = value
    return m


def _lose_catalog(root: Path) -> None:
    for name in ("catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"):
        (root / name).unlink(missing_ok=True)


def _files(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _history(ws: Workspace, name: str) -> dict[int, list[tuple[int, str, bool]]]:
    n = ws.dataset(name).shape[0]
    return {z: [(v.version, v.source, v.current) for v in ws.mask_history(name, z)] for z in range(n)}


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def full(tmp_path) -> Workspace:
    """A workspace with a dataset whose slices have imported, drawn (strokes, with provenance),
    accepted and restored versions, a dataset read by reference, and a finished run with checkpoints."""
    ws = Workspace(tmp_path / "ws")
    images = (np.arange(4 * 16 * 16) % 251).astype(np.uint8).reshape(4, 16, 16)
    ws.create_dataset(
        "cells", images, [_square(), None, _square(value=2), None], ["bg", "cell", "edge"], ["a", "b", "c", "d"]
    )
    ws.save_mask("cells", 0, _square(at=5))  # v2, drawn whole
    ws.edit_mask("cells", 0, lambda m: np.maximum(m, _square(value=2, at=9)))  # v3, strokes: provenance file
    ws.edit_mask("cells", 1, lambda m: _square(at=1))  # v1 drawn on an unlabeled slice
    ws.save_mask("cells", 3, _square(at=7), status="from-prediction", source="accepted:run-1")  # v1 accepted
    ws.restore_mask("cells", 2, 1)  # v2 restored
    zarr.create_array(str(tmp_path / "vol.zarr"), shape=(2, 16, 16), chunks=(1, 16, 16), dtype="uint8")[:] = 7
    from core.data.chunked import open_volume

    ws.create_dataset("ref", open_volume(tmp_path / "vol.zarr"), [None, _square()], ["bg", "fg"], by_reference=True)
    ws.catalog.set_pixel_size("ref", 0.5, 0.25, 0.25, "micrometer")
    history = [{"epoch": e, "train_loss": 1.0 / e, "val_dice": 0.5 + e / 10} for e in (1, 2, 3)]
    extra = {"dataset": "cells", "train_config": {"epochs": 3, "lr": 0.01}, "val_slices": [0], "dataset_version": "x"}
    for ckpt, epoch in (("best.pt", 3), ("last.pt", 3)):
        tiny_checkpoint(
            ws.run_dir("run-1") / ckpt,
            ("bg", "cell", "edge"),
            epoch=epoch,
            run_id="run-1",
            history=history,
            metrics=history[-1],
            extra=extra,
        )
    ws.catalog.create_run("run-1", "cells", {"epochs": 3, "lr": 0.01}, state="done")
    ws.catalog.update_run(
        "run-1",
        best_checkpoint=str(ws.run_dir("run-1") / "best.pt"),
        last_checkpoint=str(ws.run_dir("run-1") / "last.pt"),
        best_dice=0.8,
    )
    for h in history:
        ws.catalog.add_epoch("run-1", h["epoch"], {k: v for k, v in h.items() if k != "epoch"})
    return ws


def test_catalog_and_wal_deleted_repair_brings_back_every_dataset_version_and_run(full, capsys):
    ws, root = full, full.root
    before = {name: ws.dataset(name) for name in ("cells", "ref")}
    history = _history(ws, "cells")
    masks = {(z, v[0]): ws.read_mask("cells", z, v[0]) for z, vs in history.items() for v in vs}
    files = _files(root / "datasets")
    provenance = {z: ws.read_provenance("cells", z)[0] for z in range(4)}
    _lose_catalog(root)

    lost = Workspace(root)
    assert lost.dataset_names() == [] and lost.runs() == []
    assert sorted(lost.unlisted().datasets) == ["cells", "ref"]
    rc, out, err = _cli(capsys, "repair", "--workspace", str(root))
    assert rc == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert sorted(report["datasets"]) == ["cells", "ref"] and report["runs"] == ["run-1"]
    assert report["mask_versions"] == sum(len(vs) for vs in history.values()) + 1
    assert report["not_recovered"] == [] and "recovered dataset cells" in err

    ws = Workspace(root)
    for name, info in before.items():
        got = ws.dataset(name)
        assert (got.shape, got.dtype, got.class_names, got.slice_names, got.volume) == (
            info.shape,
            info.dtype,
            info.class_names,
            info.slice_names,
            info.volume,
        )
    assert (ws.read_images("ref")[:] == 7).all() and ws.read_mask("ref", 1) is not None
    assert ws.catalog.pixel_size("ref") == (0.5, 0.25, 0.25, "micrometer")
    assert ws.dataset("cells").statuses == before["cells"].statuses
    after = _history(ws, "cells")
    assert {z: [v[0] for v in vs] for z, vs in after.items()} == {z: [v[0] for v in vs] for z, vs in history.items()}
    assert {z: [v for v, _, cur in vs if cur] for z, vs in after.items()} == {0: [3], 1: [1], 2: [2], 3: [1]}
    sources = {(z, v): s for z, vs in after.items() for v, s, _ in vs}
    assert sources[(0, 1)] == "imported" and sources[(0, 3)] == "drawn" and sources[(3, 1)] == "accepted"
    assert sources[(2, 2)] == "restored:v1" and sources[(1, 1)] == "drawn"
    for (z, v), mask in masks.items():
        assert (ws.read_mask("cells", z, v) == mask).all()
    for z, prov in provenance.items():  # per pixel: imported, drawn, accepted
        assert (ws.read_provenance("cells", z)[0] == prov).all(), z
    run = ws.run("run-1")
    assert run["state"] == "done" and run["dataset"] == "cells" and run["best_dice"] == pytest.approx(0.8)
    assert run["config"] == {"epochs": 3, "lr": 0.01} and run["last_checkpoint"].endswith("last.pt")
    assert [e["epoch"] for e in ws.run_epochs("run-1")] == [1, 2, 3]
    assert ws.run_epochs("run-1")[1]["val_dice"] == pytest.approx(0.7)
    assert _files(root / "datasets") == files  # repair changed no file

    rc, out, err = _cli(capsys, "repair", "--workspace", str(root))  # again: nothing more to do
    assert rc == 0 and "nothing to recover" in err and json.loads(out.splitlines()[-1])["datasets"] == []


def test_repair_rebuilds_a_dataset_without_its_record_from_images_and_masks(ws, capsys):
    """A dataset imported before SegDash wrote dataset.json: shape and dtype from images.tif, classes
    from the masks (or from a run of it), slice names by default."""
    ws.create_dataset("old", np.zeros((3, 8, 8), np.uint16), [None, _square((8, 8), 2, 1), None], ["x", "y", "z"])
    (ws.dataset_dir("old") / "dataset.json").unlink()
    (ws.dataset_dir("broken")).mkdir(parents=True)  # neither images nor a record: reported, left alone
    (ws.dataset_dir("broken") / "notes.txt").write_text("mine")
    masks = ws.dataset_dir("old") / "masks"
    write_png(masks / "00009.v1.png", np.zeros((8, 8), np.uint8))  # a slice the stack lacks
    write_png(masks / "00002.v1.png", np.zeros((4, 4), np.uint8))  # not the images' size
    _lose_catalog(ws.root)
    rc, out, err = _cli(capsys, "repair", "--workspace", str(ws.root))
    assert rc == 0, err
    report = json.loads(out.splitlines()[-1])
    assert report["datasets"] == ["old"]
    assert sorted(i["path"] for i in report["not_recovered"]) == [
        "datasets/broken",
        "datasets/old/masks/00002.v1.png",
        "datasets/old/masks/00009.v1.png",
    ]
    assert "not recovered: datasets/old/masks/00009.v1.png: slice 9 beyond the dataset's 3 slices" in err
    info = Workspace(ws.root).dataset("old")
    assert info.shape == (3, 8, 8) and info.dtype == "uint16" and info.n_classes == 3
    assert info.slice_names == ("old_0000", "old_0001", "old_0002") and info.statuses[1] == "labeled"
    assert (ws.dataset_dir("broken") / "notes.txt").read_text() == "mine"


def test_an_import_never_deletes_a_folder_it_did_not_create(ws, tmp_path, capsys):
    ws.create_dataset("cells", np.ones((2, 8, 8), np.uint8), [_square((8, 8)), None], ["bg", "fg"])
    ws.save_mask("cells", 0, _square((8, 8), at=3))
    ws.create_dataset("other", np.ones((1, 8, 8), np.uint8), None, ["bg", "fg"])
    files = _files(ws.dataset_dir("cells"))
    _lose_catalog(ws.root)
    ws = Workspace(ws.root)

    with pytest.raises(WorkspaceError, match=r"datasets/cells/ that its catalog does not list.*python -m core repair"):
        ws.create_dataset("cells", np.zeros((5, 8, 8), np.uint8), None, ["a", "b"])
    tifffile.imwrite(tmp_path / "new.tif", np.zeros((5, 8, 8), np.uint8))
    rc, _, err = _cli(
        capsys, "import", "--name", "cells", "--images", str(tmp_path / "new.tif"), "--workspace", str(ws.root)
    )
    assert rc == 2 and err.startswith("error: ") and "python -m core repair" in err and "Traceback" not in err
    ws.create_dataset("fresh", np.zeros((1, 8, 8), np.uint8), None, ["a", "b"])
    with pytest.raises(WorkspaceError, match="datasets/cells/"):
        ws.rename_dataset("fresh", "cells")
    assert _files(ws.dataset_dir("cells")) == files
    assert ws.dataset_names() == ["fresh"] and not ws.name_taken("cells")
    assert sorted(p.name for p in (ws.root / "datasets").iterdir()) == ["cells", "fresh", "other"]


_SAVE_AND_DIE = """
import os, sys
import numpy as np
from core.store.workspace import Workspace
ws = Workspace(sys.argv[1])
for at in (4, 6):
    m = np.zeros((16, 16), np.uint8); m[at:at + 3, at:at + 3] = 1
    ws.save_mask("cells", 0, m)
os._exit(0)  # no close, no checkpoint: the saves are in the WAL only
"""


def test_after_a_lost_wal_a_save_never_overwrites_a_version_file(ws):
    ws.create_dataset("cells", np.ones((1, 16, 16), np.uint8), [_square()], ["bg", "fg"])
    ws.catalog.close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", _SAVE_AND_DIE, str(ws.root)], env=env, check=True, timeout=120)
    masks = ws.dataset_dir("cells") / "masks"
    saved = {n: (masks / n).read_bytes() for n in ("00000.v2.png", "00000.v3.png")}
    assert (ws.root / "catalog.sqlite-wal").stat().st_size > 0
    for name in ("catalog.sqlite-wal", "catalog.sqlite-shm"):
        (ws.root / name).unlink()

    again = Workspace(ws.root)
    assert [v.version for v in again.mask_history("cells", 0)] == [1]  # the catalog lost versions 2 and 3
    assert again.unlisted().versions == {"cells": 2}
    assert again.save_mask("cells", 0, _square(at=9)) == 4
    assert again.edit_mask("cells", 0, lambda m: _square(at=10)).version == 5
    assert {n: (masks / n).read_bytes() for n in saved} == saved
    again.recover_datasets()  # repair lists 2 and 3 again, 5 stays current
    assert [(v.version, v.current) for v in again.mask_history("cells", 0)] == [
        (1, False),
        (2, False),
        (3, False),
        (4, False),
        (5, True),
    ]


def test_a_damaged_catalog_is_one_message_and_repair_moves_it_aside(full, capsys):
    root = full.root
    full.catalog.close()
    junk = b"this is not a database, just bytes " * 200
    (root / "catalog.sqlite").write_bytes(junk)
    for name in ("catalog.sqlite-wal", "catalog.sqlite-shm"):
        (root / name).unlink(missing_ok=True)
    with pytest.raises(CatalogDamaged, match=r"catalog.sqlite\) is damaged .*run python -m core repair"):
        Workspace(root)
    rc, out, err = _cli(capsys, "list", "--workspace", str(root))
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: the workspace's catalog (catalog.sqlite) is damaged")
    assert "run python -m core repair" in err and "Traceback" not in err

    rc, out, err = _cli(capsys, "repair", "--workspace", str(root))
    assert rc == 0, err
    report = json.loads(out.splitlines()[-1])
    aside = [p for p in root.iterdir() if p.name.startswith("catalog.sqlite.corrupt-")]
    assert len(aside) == 1 and aside[0].read_bytes() == junk and aside[0].name in report["catalog"]
    assert sorted(report["datasets"]) == ["cells", "ref"] and report["runs"] == ["run-1"]
    assert Workspace(root).dataset("cells").class_names == ("bg", "cell", "edge")


def test_a_catalog_damaged_while_open_says_so_too(full):
    """The app keeps its workspace open; a session's thread that reads a catalog damaged since gets the
    same message (a thread has its own connection)."""
    from concurrent.futures import ThreadPoolExecutor

    assert full.dataset_names() == ["cells", "ref"]
    full.catalog.close()  # everything in the file, the WAL folded in
    (full.root / "catalog.sqlite").write_bytes(b"\0garbage" * 4096)
    with ThreadPoolExecutor(1) as pool, pytest.raises(CatalogDamaged, match="python -m core repair"):
        pool.submit(full.backup_if_due).result()


def test_backups_rotate_at_most_daily_and_repair_can_start_from_one(ws, monkeypatch, capsys):
    monkeypatch.setenv(KEEP_ENV, "3")
    assert backup_catalog(ws.root, ws.catalog) is None  # an empty catalog is not copied
    ws.create_dataset("a", np.zeros((1, 8, 8), np.uint8), None, ["bg", "fg"])
    t0 = 1.8e9
    made = [backup_catalog(ws.root, ws.catalog, now=t0 + i * DAY) for i in range(5)]
    assert all(made) and backup_catalog(ws.root, ws.catalog, now=t0 + 4.5 * DAY) is None  # within the day
    kept = list_backups(ws.root)
    assert kept == made[:1:-1] and len(kept) == 3  # the newest 3, newest first
    assert Catalog(kept[0]).dataset_names() == ["a"]  # a catalog SQLite reads

    ws.create_dataset("b", np.zeros((2, 8, 8), np.uint8), [None, _square((8, 8))], ["bg", "fg"])
    ws.catalog.close()
    (ws.root / "catalog.sqlite").write_bytes(b"damaged" * 1000)
    rc, out, err = _cli(capsys, "repair", "--workspace", str(ws.root), "--from-backup", str(kept[0]))
    assert rc == 0, err
    report = json.loads(out.splitlines()[-1])
    assert report["catalog"].startswith(f"restored from {kept[0].name}") and report["datasets"] == ["b"]
    assert any(p.name.startswith("catalog.sqlite.replaced-") for p in ws.root.iterdir())
    assert Workspace(ws.root).dataset_names() == ["a", "b"]
    rc, _, err = _cli(capsys, "repair", "--workspace", str(ws.root), "--from-backup", str(ws.root / "nope.sqlite"))
    assert rc == 2 and "no such catalog copy" in err


def test_a_writing_command_copies_the_catalog_once_a_day(ws, capsys, tmp_path):
    ws.create_dataset("a", np.zeros((1, 8, 8), np.uint8), None, ["bg", "fg"])
    assert list_backups(ws.root) == []
    assert _cli(capsys, "list", "--workspace", str(ws.root))[0] == 0
    assert list_backups(ws.root) == []  # list writes nothing
    assert _cli(capsys, "delete", "--dataset", "a", "--workspace", str(ws.root))[0] == 2  # no --yes
    first = list_backups(ws.root)
    assert len(first) == 1 and sqlite3.connect(first[0]).execute("SELECT name FROM datasets").fetchall() == [("a",)]
    assert _cli(capsys, "delete", "--dataset", "a", "--yes", "--workspace", str(ws.root))[0] == 0
    assert list_backups(ws.root) == first  # at most one a day


def test_a_backup_that_cannot_be_made_never_stops_the_user(ws, monkeypatch, caplog):
    ws.create_dataset("a", np.zeros((1, 8, 8), np.uint8), None, ["bg", "fg"])
    monkeypatch.setenv(KEEP_ENV, "0")
    assert ws.backup_if_due() is None and not (ws.root / "backups").exists()  # 0: no copies
    monkeypatch.setenv(KEEP_ENV, "7")
    (ws.root / "backups").write_text("a file where the folder should be")
    assert ws.backup_if_due() is None
    assert "could not copy the catalog" in caplog.text
    assert ws.dataset_names() == ["a"]
