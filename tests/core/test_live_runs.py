"""Runs seen from every process: the origin and progress columns, the heartbeat that carries a stop
request, a run of another process read from the catalog (core.train.registry.live_runs, stop_run),
and a workspace of the layout before these columns."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from core.data.owner import Owner
from core.store.records import RunRecord
from core.store.workspace import Workspace
from core.train.registry import live_runs, run_snapshot, stop_run
from core.train.snapshot import TrainingSnapshot, origin_label, progress_record, snapshot_of_run


@pytest.fixture
def other_process():
    """A live process that is not this one (it sleeps), as the owner of a run."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield Owner(proc.pid, socket.gethostname())
    proc.kill()
    proc.wait()


def _ws(tmp_path) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    ws.create_dataset("d", np.zeros((2, 8, 8), np.uint8), [np.eye(8, dtype=np.uint8), None], ["a", "b"])
    return ws


def _cli_run(ws: Workspace, owner: Owner, run_id: str = "cli-run") -> None:
    """What ``python -m core train`` in another process writes: its row, two epochs, a heartbeat."""
    ws.catalog.create_run(run_id, "d", {"epochs": 5, "steps_per_epoch": 10}, state="running", owner=owner, origin="cli")
    ws.catalog.update_run(run_id, device="cpu (2 threads)")
    for epoch in (1, 2):
        ws.catalog.add_epoch(run_id, epoch, {"train_loss": 1.0 / epoch, "val_loss": 1.0, "val_dice": 0.3 * epoch})
    snap = TrainingSnapshot(run_id, "d", "running", epoch=2, epochs=5, step=4, steps_per_epoch=10, eta_s=30.0)
    ws.catalog.beat(run_id, progress_record(snap), state="running")


def test_a_run_of_another_process_is_live_with_its_origin(tmp_path, other_process):
    ws = _ws(tmp_path)
    _cli_run(ws, other_process)
    ws.catalog.create_run("finished", "d", {"epochs": 1}, state="done", origin="app")
    live = live_runs(ws)
    assert [s.run_id for s in live] == ["cli-run"]
    snap = live[0]
    assert snap.state == "running" and snap.epoch == 2 and snap.epochs == 5
    assert snap.step == 4 and snap.steps_per_epoch == 10 and snap.device == "cpu (2 threads)"
    assert [h["epoch"] for h in snap.history] == [1, 2] and snap.history[1]["val_dice"] == pytest.approx(0.6)
    assert 25.0 < snap.eta_s <= 30.0  # the ETA written with the heartbeat, less the time since
    assert snap.origin == f"CLI {other_process.pid}@{other_process.host}"
    assert origin_label(ws.run("finished")) == "dashboard"  # a finished run: where it came from


def test_stop_of_another_process_goes_through_the_catalog(tmp_path, other_process):
    ws = _ws(tmp_path)
    _cli_run(ws, other_process)
    stop_run(ws, "cli-run")
    assert ws.run("cli-run").stop_requested == 1
    assert run_snapshot(ws, "cli-run").state == "stopping"  # asked, not yet done: shown as stopping
    # the owner reads the request with its next beat; a late beat never undoes an outcome
    assert ws.catalog.beat("cli-run", state="stopping") is True
    ws.catalog.update_run("cli-run", state="stopped")
    ws.catalog.beat("cli-run", state="running")
    assert ws.run("cli-run").state == "stopped" and live_runs(ws) == []


def test_a_run_whose_process_is_gone_is_not_live(tmp_path):
    ws = _ws(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _cli_run(ws, Owner(dead.pid, socket.gethostname()))
    assert live_runs(ws) == [] and ws.run("cli-run").state == "interrupted"


def test_snapshot_of_a_run_without_progress_uses_its_config():
    run = RunRecord("r", "d", time.time(), "queued", config={"epochs": 7, "steps_per_epoch": 3}, owner_pid=1)
    snap = snapshot_of_run(run, [])
    assert (snap.epoch, snap.epochs, snap.step, snap.steps_per_epoch, snap.eta_s) == (0, 7, 0, 3, None)


def test_run_records_keep_their_keys_and_a_workspace_of_the_previous_layout_opens(tmp_path, other_process):
    """Today's catalog has no origin and no progress column: opening adds them, rows kept."""
    ws = _ws(tmp_path)
    ws.catalog.create_run("old", "d", {"epochs": 2}, state="done")
    ws.catalog.create_run("old-live", "d", {"epochs": 2}, state="running", owner=other_process)
    con = sqlite3.connect(ws.root / "catalog.sqlite")
    con.execute("ALTER TABLE runs DROP COLUMN origin")
    con.execute("ALTER TABLE runs DROP COLUMN progress")
    con.commit()
    con.close()
    again = Workspace(ws.root)
    old = again.run("old")
    assert old.origin == "" and old.progress == {} and old.state == "done"
    assert set(old.to_dict()) >= {"run_id", "dataset", "state", "config", "extra", "best_dice", "device", "error"}
    snap = live_runs(again)[0]
    assert snap.run_id == "old-live" and snap.origin == f"process {other_process.pid}@{other_process.host}"
    again.catalog.create_run("new", "d", {}, origin="cli")
    assert again.run("new").origin == "cli"


def test_origin_labels():
    me = Owner(100, "here")
    run = RunRecord("r", "d", 0.0, "running", owner_pid=100, owner_host="here", origin="app")
    assert origin_label(run, me) == "this server"
    run.owner_pid = 7
    assert origin_label(run, me) == "other server 7@here"
    run.origin = "torchrun"
    assert origin_label(run, me) == "torchrun 7@here"
    run.state = "done"
    assert origin_label(run, me) == "torchrun"
