"""Faults and concurrent use: a full disk, a read-only workspace, two imports of one name, processes
killed mid-work. Each ends with a clear message and nothing already saved lost.

A full or read-only disk is a real tmpfs where the test runs as root and may mount one, and an
injected ENOSPC everywhere else, so CI without mount rights still tests the handling.
"""

from __future__ import annotations

import errno
import gc
import json
import multiprocessing
import os
import shutil as shutil_mod
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

import core.store.datasets as datasets_mod  # where a dataset is written (create_dataset)
import core.store.workspace as workspace_mod
from core.data.io import write_png
from core.data.owner import Owner, host_token
from core.store.catalog import Catalog
from core.store.workspace import Workspace, WorkspaceError

ROOT = Path(__file__).resolve().parents[2]


def _dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@contextmanager
def _tmpfs(path: Path, size: str, ro: bool = False):
    """A small tmpfs at ``path``; skips the test where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    opts = f"size={size}" + (",ro" if ro else "")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True)
    if res.returncode:
        pytest.skip(f"cannot mount a tmpfs: {res.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _nothing_left(ws: Workspace) -> None:
    datasets = ws.root / "datasets"
    left = [p.name for p in datasets.iterdir()] if datasets.is_dir() else []
    assert left == [] or all(not n.startswith(".") for n in left), left
    assert ws.catalog.claims() == []


# -- 1. disk full ------------------------------------------------------------------------------


def test_import_onto_a_full_tmpfs_is_refused_before_writing(tmp_path):
    with _tmpfs(tmp_path / "small", "2m") as mnt:
        ws = Workspace(mnt / "ws")
        big = np.zeros((12, 512, 512), np.uint8)  # 3 MB
        with pytest.raises(WorkspaceError, match=r"not enough space in .*: needs 3\.\d MB, 1\.\d MB free"):
            ws.create_dataset("big", big, None, ["a", "b"])
        assert ws.dataset_names() == [] and not ws.name_taken("big")
        _nothing_left(ws)
        ws.create_dataset("small", np.ones((2, 64, 64), np.uint8), None, ["a", "b"])  # the space is back
        assert ws.dataset("small").shape == (2, 64, 64)


_FILL_AND_IMPORT = r"""
import sys, numpy as np, shutil
import core.store.workspace as w
free = shutil.disk_usage(sys.argv[1]).free
shutil.disk_usage = lambda p: shutil._ntuple_diskusage(10**12, 0, 10**12)  # the pre-check passes
ws = w.Workspace(sys.argv[1] + "/ws")
try:
    ws.create_dataset("big", np.ones((12, 512, 512), np.uint8), None, ["a", "b"])
except w.WorkspaceError as exc:
    print("REFUSED", exc)
print("LEFT", sorted(p.name for p in (ws.root / "datasets").iterdir()), ws.catalog.claims())
"""


def test_disk_full_while_writing_is_a_message_not_sigbus(tmp_path):
    """The pre-check lies (another writer filled the disk): the write meets ENOSPC. A memory-mapped
    write would kill the process with SIGBUS (exit -7); the plain writes raise and clean up."""
    with _tmpfs(tmp_path / "small", "2m") as mnt:
        out = subprocess.run(
            [sys.executable, "-c", _FILL_AND_IMPORT, str(mnt)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=60,
        )
        assert out.returncode == 0, (out.returncode, out.stderr)
        assert "REFUSED not enough space in" in out.stdout
        assert "LEFT [] []" in out.stdout


def test_injected_enospc_during_import_cleans_up(tmp_path, monkeypatch):
    ws = Workspace(tmp_path / "ws")
    ws.create_dataset("kept", np.ones((2, 8, 8), np.uint8), [np.eye(8, dtype=np.uint8), None], ["a", "b"])

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(datasets_mod, "write_png", full)
    with pytest.raises(WorkspaceError, match="not enough space in"):
        ws.create_dataset("new", np.ones((2, 8, 8), np.uint8), [np.eye(8, dtype=np.uint8), None], ["a", "b"])
    assert ws.dataset_names() == ["kept"]
    _nothing_left(ws)
    np.testing.assert_array_equal(ws.read_mask("kept", 0), np.eye(8, dtype=np.uint8))


def test_atomic_write_on_a_full_disk_keeps_the_old_file(tmp_path):
    from core.data.io import atomic_write

    target = tmp_path / "m.png"
    target.write_bytes(b"old")

    def full(fh):
        fh.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(ValueError, match=f"not enough space in {tmp_path}: .* MB free; m.png was not written"):
        atomic_write(target, full)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["m.png"]


def test_saving_a_mask_on_a_full_tmpfs_keeps_every_version(tmp_path):
    with _tmpfs(tmp_path / "small", "1m") as mnt:
        ws = Workspace(mnt / "ws")
        rng = np.random.default_rng(0)
        ws.create_dataset("d", np.zeros((1, 256, 256), np.uint8), [np.zeros((256, 256), np.uint8)], ["a", "b"])
        filler = _fill(mnt)
        with pytest.raises(ValueError, match="not enough space in"):
            ws.save_mask("d", 0, rng.integers(0, 2, (256, 256)).astype(np.uint8))  # noise: does not compress
        assert (ws.read_mask("d", 0) == 0).all() and ws.catalog.current_version("d", 0)["version"] == 1
        filler.unlink()
        assert ws.save_mask("d", 0, np.ones((256, 256), np.uint8)) == 2


def test_pre_check_counts_the_bytes_of_the_stack(tmp_path, monkeypatch):
    ws = Workspace(tmp_path / "ws")
    usage = datasets_mod.shutil._ntuple_diskusage(10**9, 10**9 - 5000, 5000)
    monkeypatch.setattr(datasets_mod.shutil, "disk_usage", lambda p: usage)
    with pytest.raises(WorkspaceError, match=r"needs 32\d\.\d KB, 4\.9 KB free"):
        ws.create_dataset("x", np.zeros((4, 256, 256), np.uint16)[:, :, :128], None, ["a", "b"])
    _nothing_left(ws)


# -- read-only workspace -----------------------------------------------------------------------


def test_read_only_workspace_is_one_clear_message(tmp_path, monkeypatch):
    root = tmp_path / "ws"
    root.mkdir()
    real_access = os.access
    monkeypatch.setattr(workspace_mod.os, "access", lambda p, m: False if Path(p) == root else real_access(p, m))
    with pytest.raises(WorkspaceError, match=f"workspace folder {root} is not writable"):
        Workspace(root)


def test_read_only_mount_in_cli_and_core(tmp_path):
    with _tmpfs(tmp_path / "ro", "1m") as mnt:
        ws = Workspace(mnt / "ws")
        ws.create_dataset("d", np.ones((1, 8, 8), np.uint8), None, ["a", "b"])
        del ws
        gc.collect()  # closes the catalog, so the mount can turn read-only
        remount = subprocess.run(["mount", "-o", "remount,ro", str(mnt)], capture_output=True, text=True)
        if remount.returncode:
            pytest.skip(f"cannot remount read-only: {remount.stderr.strip()}")
        with pytest.raises(WorkspaceError, match="is not writable"):
            Workspace(mnt / "ws")
        with pytest.raises(WorkspaceError, match="cannot be created|not writable"):
            Workspace(mnt / "other")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("SEGDASH_DEBUG", None)
        out = subprocess.run(
            [sys.executable, "-m", "core", "list", "--workspace", str(mnt / "ws")],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=60,
        )
        assert out.returncode == 2
        assert out.stderr.strip().splitlines() == [
            f"error: workspace folder {mnt / 'ws'} is not writable; choose a "
            "writable folder with SEGDASH_WORKSPACE or --workspace, or make "
            "it writable"
        ]


def test_catalog_errors_become_workspace_errors(tmp_path):
    cat = Catalog(tmp_path / "catalog.sqlite")
    with pytest.raises(WorkspaceError, match="not enough space"):
        with cat.transaction():
            raise sqlite3.OperationalError("database or disk is full")


# -- 2. two imports of one name ----------------------------------------------------------------


def _import_worker(root: str, value: int, barrier, results) -> None:
    ws = Workspace(root)
    images = np.full((8, 128, 128), value, np.uint8)
    masks = [np.full((128, 128), value % 2, np.uint8)] * 8
    barrier.wait()
    try:
        ws.create_dataset("same", images, masks, ["a", "b"])
        results.put((value, "ok"))
    except ValueError as exc:
        results.put((value, str(exc)))


@pytest.mark.parametrize("kind", ["processes", "threads"])
def test_two_imports_of_one_name_one_wins_intact(tmp_path, kind):
    root = str(tmp_path / "ws")
    Workspace(root)
    if kind == "processes":
        ctx = multiprocessing.get_context("fork")
        barrier, results = ctx.Barrier(2), ctx.Queue()
        procs = [ctx.Process(target=_import_worker, args=(root, v, barrier, results)) for v in (1, 2)]
    else:
        import queue
        import threading

        barrier, results = threading.Barrier(2), queue.Queue()
        procs = [threading.Thread(target=_import_worker, args=(root, v, barrier, results)) for v in (1, 2)]
    for p in procs:
        p.start()
    got = dict(results.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(60)
    winners = [v for v, r in got.items() if r == "ok"]
    assert len(winners) == 1, got
    loser = 3 - winners[0]
    assert got[loser].startswith("a dataset named 'same' exists already"), got
    ws = Workspace(root)
    assert ws.dataset_names() == ["same"]
    assert (ws.read_images("same") == winners[0]).all()
    assert ws.labeled_slices("same") == list(range(8))
    assert (ws.read_mask("same", 7) == winners[0] % 2).all()
    _nothing_left(ws)


def test_a_name_being_imported_is_not_a_dataset_and_is_taken(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.catalog.claim_dataset("busy", ".busy.importing-x-1-1", owner=Owner(os.getpid(), socket.gethostname()))
    assert ws.dataset_names() == [] and not ws.has_dataset("busy") and ws.name_taken("busy")
    with pytest.raises(WorkspaceError, match="a dataset named 'busy' exists already: another session"):
        ws.create_dataset("busy", np.zeros((1, 4, 4), np.uint8), None, ["a", "b"])
    ws.create_dataset("other", np.zeros((1, 4, 4), np.uint8), None, ["a", "b"])
    with pytest.raises(WorkspaceError, match="exists already"):
        ws.rename_dataset("other", "busy")
    assert ws.dataset_names() == ["other"] and ws.read_images("other").shape == (1, 4, 4)


def test_leftovers_of_dead_processes_are_removed_at_open(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.create_dataset("d", np.zeros((1, 4, 4), np.uint8), [np.eye(4, dtype=np.uint8)], ["a", "b"])
    dead, me, host = _dead_pid(), os.getpid(), host_token()
    datasets = ws.root / "datasets"
    dead_dir = datasets / f".crashed.importing-{host}-{dead}-123"
    old_style = datasets / f".older.importing-{dead}-456"  # before the host was in the name
    live_dir = datasets / f".mine.importing-{host}-{me}-789"
    for d in (dead_dir, old_style, live_dir):
        (d / "masks").mkdir(parents=True)
        (d / "images.tif").write_bytes(b"x" * 100)
    masks = ws.dataset_dir("d") / "masks"
    dead_tmp = masks / f".00000.v2.png.{host}-{dead}.abc123_x.tmp"
    live_tmp = masks / f".00000.v3.png.{host}-{me}.abc123_y.tmp"
    other_host_tmp = masks / f".00000.v4.png.elsewhere-{dead}.abc123_z.tmp"
    for f in (dead_tmp, live_tmp, other_host_tmp):
        f.write_bytes(b"partial")
    ws.catalog.claim_dataset("crashed", dead_dir.name, owner=Owner(dead, socket.gethostname()))

    again = Workspace(ws.root)
    assert not dead_dir.exists() and not old_style.exists() and not dead_tmp.exists()
    assert live_dir.exists() and live_tmp.exists() and other_host_tmp.exists()  # not ours to judge
    assert again.catalog.claims() == [] and not again.name_taken("crashed")
    assert again.dataset_names() == ["d"] and again.read_mask("d", 0) is not None  # nothing saved is touched
    again.create_dataset("crashed", np.zeros((1, 4, 4), np.uint8), None, ["a", "b"])


def test_delete_dataset_leaves_no_folder_and_allows_the_name_again(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.create_dataset("d", np.zeros((2, 4, 4), np.uint8), [np.eye(4, dtype=np.uint8), None], ["a", "b"])
    assert "removes its 2 images, the masks of 1 slices and all 1 saved mask versions" in ws.deletion_summary("d")
    ws.delete_dataset("d")
    assert sorted(p.name for p in (ws.root / "datasets").iterdir()) == []
    ws.create_dataset("d", np.ones((1, 4, 4), np.uint8), None, ["a", "b"])
    assert ws.read_images("d").shape == (1, 4, 4)


# -- 3. runs whose process is gone -------------------------------------------------------------


def test_a_run_whose_owner_died_reads_interrupted_and_is_fixed_at_open(tmp_path):
    ws = Workspace(tmp_path / "ws")
    host = socket.gethostname()
    ws.catalog.create_run("dead", "d", {}, state="running", owner=Owner(_dead_pid(), host))
    ws.catalog.create_run("live", "d", {}, state="running")
    ws.catalog.create_run("far", "d", {}, state="running", owner=Owner(1, "another-host"))  # fresh heartbeat
    ws.catalog.create_run("far-stale", "d", {}, state="queued", owner=Owner(1, "another-host"))
    ws.catalog.update_run("far-stale", heartbeat=time.time() - 3600)
    ws.catalog.create_run("finished", "d", {}, state="done", owner=Owner(_dead_pid(), host))
    states = {r["run_id"]: r["state"] for r in ws.catalog.runs()}
    assert states == {
        "dead": "interrupted",
        "live": "running",
        "far": "running",
        "far-stale": "interrupted",
        "finished": "done",
    }
    (ws.root / "runs" / "dead").mkdir(parents=True)
    (ws.root / "runs" / "dead" / "last.pt").write_bytes(b"saved, not yet recorded when killed")
    Workspace(ws.root)  # opening writes it down
    stored = {r["run_id"]: r["state"] for r in ws.catalog.query("SELECT run_id, state FROM runs")}
    assert stored["dead"] == "interrupted" and stored["far-stale"] == "interrupted" and stored["live"] == "running"
    assert ws.catalog.run("dead")["last_checkpoint"] == str(ws.root / "runs" / "dead" / "last.pt")
    assert ws.catalog.run("far-stale")["last_checkpoint"] == ""


_OLD_SCHEMA = """
CREATE TABLE datasets (name TEXT PRIMARY KEY, created REAL NOT NULL, n_slices INTEGER NOT NULL,
    height INTEGER NOT NULL, width INTEGER NOT NULL, dtype TEXT NOT NULL, class_names TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT '', notices TEXT NOT NULL DEFAULT '[]');
CREATE TABLE slices (dataset TEXT NOT NULL REFERENCES datasets(name) ON DELETE CASCADE ON UPDATE CASCADE,
    z INTEGER NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 0,
    updated REAL NOT NULL, PRIMARY KEY (dataset, z));
CREATE TABLE mask_versions (dataset TEXT NOT NULL REFERENCES datasets(name) ON DELETE CASCADE ON UPDATE CASCADE,
    z INTEGER NOT NULL, version INTEGER NOT NULL, status TEXT NOT NULL, file TEXT NOT NULL, created REAL NOT NULL,
    undone INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (dataset, z, version));
CREATE TABLE runs (run_id TEXT PRIMARY KEY, dataset TEXT NOT NULL, created REAL NOT NULL, state TEXT NOT NULL,
    config TEXT NOT NULL, device TEXT NOT NULL DEFAULT '', dataset_version TEXT NOT NULL DEFAULT '',
    best_checkpoint TEXT NOT NULL DEFAULT '', last_checkpoint TEXT NOT NULL DEFAULT '', best_dice REAL,
    wall_time REAL NOT NULL DEFAULT 0, error TEXT NOT NULL DEFAULT '', extra TEXT NOT NULL DEFAULT '{}');
CREATE TABLE epochs (run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE, epoch INTEGER NOT NULL,
    metrics TEXT NOT NULL, PRIMARY KEY (run_id, epoch));
"""


def test_a_workspace_of_the_previous_schema_opens(tmp_path):
    """The catalog of the release before owners and claims (schema copied from it): columns are added,
    every row kept, and its stuck 'running' run (no owner known) reads as interrupted."""
    root = tmp_path / "ws"
    (root / "datasets" / "old" / "masks").mkdir(parents=True)
    import tifffile

    tifffile.imwrite(
        root / "datasets" / "old" / "images.tif", np.full((1, 4, 4), 7, np.uint8), photometric="minisblack"
    )
    write_png(root / "datasets" / "old" / "masks" / "00000.v1.png", np.eye(4, dtype=np.uint8))
    con = sqlite3.connect(root / "catalog.sqlite")
    con.executescript(_OLD_SCHEMA)
    con.execute("INSERT INTO datasets VALUES ('old', 0, 1, 4, 4, 'uint8', '[\"a\", \"b\"]', '', '[]')")
    con.execute("INSERT INTO slices VALUES ('old', 0, 's0', 'labeled', 1, 0)")
    con.execute("INSERT INTO mask_versions VALUES ('old', 0, 1, 'labeled', 'masks/00000.v1.png', 0, 0)")
    con.execute(
        "INSERT INTO runs (run_id, dataset, created, state, config) VALUES ('stuck', 'old', 0, 'running', '{}')"
    )
    con.commit()
    con.close()
    ws = Workspace(root)
    assert ws.dataset_names() == ["old"] and (ws.read_mask("old", 0) == np.eye(4)).all()
    assert ws.catalog.run("stuck")["state"] == "interrupted"
    ws.catalog.create_run("new", "old", {})
    assert ws.catalog.run("new")["owner_pid"] == os.getpid()
    Workspace(root)  # a second open finds nothing to migrate


# -- 9. permissions ----------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        ws = Workspace(tmp_path / "ws")
        ws.create_dataset("d", np.zeros((1, 4, 4), np.uint8), [np.eye(4, dtype=np.uint8)], ["a", "b"])
        ws.save_mask("d", 0, np.zeros((4, 4), np.uint8))
        from core.workflow.export import export_dataset_zip, export_masks_tiff, export_masks_zip

        export_masks_zip(ws, "d", tmp_path / "masks.zip")
        export_masks_tiff(ws, "d", tmp_path / "masks.tif")
        export_dataset_zip(ws, "d", tmp_path / "dataset.zip")
        files = [
            ws.images_path("d"),
            *sorted((ws.dataset_dir("d") / "masks").iterdir()),
            tmp_path / "masks.zip",
            tmp_path / "masks.tif",
            tmp_path / "dataset.zip",
        ]
    finally:
        os.umask(old)
    for f in files:
        assert f.stat().st_mode & 0o777 == 0o666 & ~umask, f


# -- CLI ---------------------------------------------------------------------------------------

_NO_TORCH = """
import sys
from core.cli import main
rc = main(sys.argv[1:])
print("TORCH" if "torch" in sys.modules else "NO-TORCH", rc)
"""


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--dataset", "luchi"],
        ["train", "--dataset", "bare"],
        ["train", "--dataset", "d", "--resume", "no-such-run"],
        ["export", "--dataset", "luchi", "--out", "x.zip"],
        ["predict", "--checkpoint", "missing.pt", "--input", "x.tif", "--out", "y.tif"],
    ],
)
def test_refusals_that_need_no_model_come_before_torch(tmp_path, args):
    ws = Workspace(tmp_path / "ws")
    ws.create_dataset("d", np.zeros((1, 16, 16), np.uint8), [np.eye(16, dtype=np.uint8)], ["a", "b"])
    ws.create_dataset("bare", np.zeros((1, 16, 16), np.uint8), None, ["a", "b"])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SEGDASH_DEBUG", None)
    out = subprocess.run(
        [sys.executable, "-c", _NO_TORCH, *args, "--workspace", str(ws.root)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert out.stdout.split() == ["NO-TORCH", "2"], (out.stdout, out.stderr)
    assert out.stderr.startswith("error: ") and len(out.stderr.strip().splitlines()) == 1


def _cli(*args, ws):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SEGDASH_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "core", *args, "--workspace", str(ws)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def test_cli_delete_asks_for_yes(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.create_dataset("d", np.zeros((2, 8, 8), np.uint8), [np.eye(8, dtype=np.uint8), None], ["a", "b"])
    out = _cli("delete", "--dataset", "d", ws=ws.root)
    assert out.returncode == 2 and "add --yes" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert ws.has_dataset("d") and ws.read_mask("d", 0) is not None
    out = _cli("delete", "--dataset", "d", "--yes", ws=ws.root)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["deleted"] == "d"
    assert not ws.has_dataset("d") and not ws.dataset_dir("d").exists()
    out = _cli("delete", "--dataset", "d", "--yes", ws=ws.root)
    assert out.returncode == 2 and "no dataset named 'd'" in out.stderr


# -- training: killed, interrupted, resumed; a full disk ---------------------------------------

_TINY_TRAIN = {
    "model": {"arch": "classic", "classic_width": 4},
    "patch_size": 32,
    "batch_size": 2,
    "steps_per_epoch": 2,
    "epochs": 2,
    "val_fraction": 0.25,
    "amp": False,
}


def _labeled(ws: Workspace, name: str = "toy") -> None:
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 60, (4, 48, 48), dtype=np.uint8)
    masks = np.zeros((4, 48, 48), np.uint8)
    masks[:, 12:30, 10:36] = 1
    imgs[masks == 1] += 150
    ws.create_dataset(name, imgs, list(masks), ["bg", "fg"])


@pytest.fixture
def one_thread(monkeypatch):
    monkeypatch.setenv("SEGDASH_THREADS", "1")
    import torch

    old = torch.get_num_threads()
    yield
    torch.set_num_threads(old)


def test_an_interrupted_run_resumes_from_its_last_checkpoint(tmp_path, one_thread):
    from core.train.headless import train_headless

    ws = Workspace(tmp_path / "ws")
    _labeled(ws)
    first = train_headless(ws, "toy", epochs=1, config=_TINY_TRAIN)
    assert first["state"] == "done"
    # as if its process had been killed after epoch 1: still 'running', owner gone
    ws.catalog.update_run(first["run_id"], state="running", owner_pid=_dead_pid(), owner_host=socket.gethostname())
    assert ws.catalog.run(first["run_id"])["state"] == "interrupted"
    resumed = train_headless(ws, "toy", epochs=2, resume=first["run_id"])
    assert resumed["state"] == "done" and resumed["epochs"] == 2
    assert ws.catalog.run(resumed["run_id"])["extra"]["resumed_from"] == first["run_id"]

    ws.catalog.update_run(resumed["run_id"], state="running", owner_pid=os.getpid(), owner_host=socket.gethostname())
    with pytest.raises(ValueError, match="is still running .* stop it first"):
        train_headless(ws, "toy", epochs=3, resume=resumed["run_id"])
    ws.catalog.create_run("early", "toy", {}, state="running", owner=Owner(_dead_pid(), socket.gethostname()))
    with pytest.raises(ValueError, match="interrupted before its first epoch ended"):
        train_headless(ws, "toy", epochs=3, resume="early")


def test_training_on_a_full_disk_fails_with_a_message(tmp_path, one_thread, monkeypatch):
    """Injected: torch's own error for a failed write (no errno), on a disk with little space left."""
    import core.train.recorder as recorder
    from core.train.headless import train_headless

    ws = Workspace(tmp_path / "ws")
    _labeled(ws)

    def full(*args, **kwargs):
        raise RuntimeError(
            "[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed writing file "
            "data/3: file write failed"
        )

    usage = shutil_mod.disk_usage(tmp_path)
    monkeypatch.setattr(recorder, "save_checkpoint", full)
    monkeypatch.setattr(recorder.shutil, "disk_usage", lambda p: usage._replace(free=4096))
    summary = train_headless(ws, "toy", epochs=1, config=_TINY_TRAIN)
    assert summary["state"] == "failed"
    assert summary["error"].startswith("not enough space in ") and "inline_container" not in summary["error"]
    assert ws.catalog.run(summary["run_id"])["error"] == summary["error"]
    assert ws.labeled_slices("toy") == [0, 1, 2, 3]


def _fill(folder: Path, leave: int = 0) -> Path:
    """Fill the file system of ``folder`` up to ``leave`` bytes free; returns the filler file."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    for chunk in (65536, 512, 1):
        try:
            while shutil_mod.disk_usage(folder).free - chunk >= leave:
                os.write(fd, b"\0" * chunk)
        except OSError:
            pass
    os.close(fd)
    return filler


@pytest.mark.parametrize("leave", [0, 48 << 10])
def test_training_on_a_full_tmpfs_fails_with_a_message(tmp_path, one_thread, leave, monkeypatch):
    """Full to the last byte: the run cannot even be recorded. Nearly full: the first checkpoint
    (or the catalog) does not fit. Either way one message, the dataset untouched, and the run's
    outcome written to the catalog once there is room again."""
    import core.train.job as training_job
    from core.train.headless import train_headless

    monkeypatch.setattr(training_job, "_HEARTBEAT_S", 0.1)

    with _tmpfs(tmp_path / "small", "3m") as mnt:
        ws = Workspace(mnt / "ws")
        _labeled(ws)
        filler = _fill(mnt, leave)
        try:
            summary = train_headless(ws, "toy", epochs=1, config=_TINY_TRAIN)
        except WorkspaceError as exc:
            assert leave == 0 and str(exc).startswith(f"not enough space in {ws.root}")
        else:
            assert summary["state"] == "failed", summary
            assert summary["error"].startswith(f"not enough space in {ws.root}"), summary
            assert "inline_container" not in summary["error"]
        filler.unlink()
        if leave:
            deadline = time.time() + 10
            while ws.catalog.run(summary["run_id"])["state"] != "failed" and time.time() < deadline:
                time.sleep(0.1)
            assert ws.catalog.run(summary["run_id"])["error"] == summary["error"]
        again = Workspace(ws.root)
        assert again.labeled_slices("toy") == [0, 1, 2, 3] and (again.read_mask("toy", 0)[12:30, 10:36] == 1).all()
        assert not list(ws.root.rglob("*.tmp"))


@pytest.mark.slow
def test_cli_training_killed_shows_interrupted_and_resumes(tmp_path):
    ws = Workspace(tmp_path / "ws")
    _labeled(ws)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({**_TINY_TRAIN, "epochs": 200}))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SEGDASH_THREADS": "1"}
    env.pop("SEGDASH_DEBUG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "core", "train", "--dataset", "toy", "--config", str(cfg), "--workspace", str(ws.root)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not list((ws.root / "runs").glob("*/last.pt")) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert list((ws.root / "runs").glob("*/last.pt")), "no epoch finished in time"
    finally:
        proc.kill()
        proc.wait()
    out = _cli("list", ws=ws.root)
    assert out.returncode == 0, out.stderr
    run = json.loads(out.stdout.strip().splitlines()[-1])["runs"][0]
    assert run["state"] == "interrupted" and run["resumable"] and run["epochs_done"] >= 1
    assert f"run {run['run_id']} on toy: interrupted" in out.stderr and "--resume" in out.stderr
    out = _cli(
        "train", "--dataset", "toy", "--resume", run["run_id"], "--epochs", str(run["epochs_done"] + 1), ws=ws.root
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["state"] == "done" and summary["epochs"] == run["epochs_done"] + 1


def test_a_stop_requested_through_the_catalog_stops_the_run(tmp_path, one_thread, monkeypatch):
    """What another process (the Train page for a CLI run) can do: the worker reads it with its heartbeat."""
    import core.train.job as training_job
    from core.train.config import TrainConfig
    from core.train.registry import registry

    monkeypatch.setattr(training_job, "_HEARTBEAT_S", 0.2)
    ws = Workspace(tmp_path / "ws")
    _labeled(ws)
    job = registry().start(
        training_job.TrainingJob(
            ws, "toy", TrainConfig.from_dict({**_TINY_TRAIN, "steps_per_epoch": 1000, "epochs": 50})
        )
    )
    t0 = time.time()
    while ws.catalog.run(job.run_id)["state"] != "running" and time.time() - t0 < 30:
        time.sleep(0.05)
    before = ws.catalog.run(job.run_id)["heartbeat"]
    time.sleep(0.5)
    assert ws.catalog.run(job.run_id)["heartbeat"] > before  # it beats
    Catalog(ws.root / "catalog.sqlite").request_stop(job.run_id)
    assert job.join(30), "the job did not stop"
    assert job.state == "stopped" and ws.catalog.run(job.run_id)["state"] == "stopped"


def test_two_cli_imports_of_one_name(tmp_path):
    """The issue's case: two `python -m core import` of one name at once: one dataset, one refusal."""
    import tifffile

    ws = Workspace(tmp_path / "ws")
    ws.create_dataset("other", np.zeros((1, 4, 4), np.uint8), None, ["a", "b"])  # no sample import
    for v in (1, 2):
        tifffile.imwrite(tmp_path / f"s{v}.tif", np.full((20, 256, 256), v, np.uint8), photometric="minisblack")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SEGDASH_DEBUG", None)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "core",
                "import",
                "--name",
                "same",
                "--images",
                str(tmp_path / f"s{v}.tif"),
                "--workspace",
                str(ws.root),
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for v in (1, 2)
    ]
    outs = [(p.wait(60), *p.communicate()) for p in procs]
    codes = sorted(rc for rc, _, _ in outs)
    assert codes == [0, 2], outs
    winner = next(i + 1 for i, (rc, _, _) in enumerate(outs) if rc == 0)
    loser_err = next(err for rc, _, err in outs if rc == 2)
    assert loser_err.startswith("error: a dataset named 'same' exists already") and "Traceback" not in loser_err
    assert (Workspace(ws.root).read_images("same") == winner).all()
    _nothing_left(ws)
