"""Training in a worker process (core.train.process): what the dashboard starts."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from core.errors import SegDashError
from core.store.workspace import Workspace
from core.train.config import TrainConfig
from core.train.job import TrainingJob
from core.train.process import ProcessJob, start_training
from core.train.registry import live_runs, registry
from core.train.snapshot import origin_label
from tests.synthetic import TINY_TRAIN, disc_stack

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.skipif(os.name != "posix", reason="POSIX signals")]

TINY = {**TINY_TRAIN, "epochs": 2}


@pytest.fixture
def ws(ws: Workspace) -> Workspace:
    rng = np.random.default_rng(0)
    imgs, masks = disc_stack(rng, 6, 64, 64)
    ws.create_dataset("discs", imgs, masks, ["background", "disc"])
    ws.create_dataset("bare", imgs, None, ["background", "disc"])
    return ws


def _wait(cond, timeout=120.0):
    t = time.monotonic()
    while not cond():
        assert time.monotonic() - t < timeout, "timed out"
        time.sleep(0.1)


def test_a_run_trains_in_a_worker_and_the_job_follows_it(ws):
    job = start_training(ws, "discs", TrainConfig.from_dict(TINY))
    assert isinstance(job, ProcessJob) and registry().active(ws.root) is job
    assert job.pid is not None and job.pid != os.getpid()
    _wait(lambda: ws.run(job.run_id) is not None)
    assert job.join(180)
    snap = job.snapshot()
    assert snap.state == "done", snap.error
    assert [h["epoch"] for h in snap.history] == [1, 2] and snap.epoch == 2
    assert snap.best_checkpoint and os.path.isfile(snap.last_checkpoint)
    run = ws.run(job.run_id)
    assert run.state == "done" and run.origin == "app"
    assert origin_label(run) == "dashboard" and registry().active(ws.root) is None


def test_stop_reaches_the_worker_and_keeps_the_weights(ws):
    job = start_training(ws, "discs", TrainConfig.from_dict({**TINY, "epochs": 500}))
    _wait(lambda: job.snapshot().state == "running" and (job.snapshot().step or job.snapshot().epoch))
    live = live_runs(ws)
    assert [s.run_id for s in live] == [job.run_id] and live[0].origin == "this server"
    run = ws.run(job.run_id)
    assert run.owner_pid == job.pid and origin_label(run) == "this server"  # the Runs table: this server's worker
    job.stop()
    assert job.snapshot().state == "stopping"
    assert job.join(60)
    snap = job.snapshot()
    assert snap.state == "stopped" and snap.epoch < 500 and os.path.isfile(snap.last_checkpoint)


def test_a_worker_that_dies_leaves_its_run_failed_with_the_reason(ws):
    job = start_training(ws, "discs", TrainConfig.from_dict({**TINY, "epochs": 500}))
    _wait(lambda: job.snapshot().state == "running")
    os.kill(job.pid, signal.SIGKILL)
    assert job.join(60)
    snap = job.snapshot()
    assert snap.state == "failed" and "ended unexpectedly" in snap.error and "out of memory" in snap.error
    assert ws.run(job.run_id).state == "failed"


def test_refusals_come_before_any_process_and_the_thread_mode_stays(ws, monkeypatch):
    with pytest.raises(SegDashError, match="no labeled slices"):
        start_training(ws, "bare", TrainConfig.from_dict(TINY))
    assert ws.runs() == []
    monkeypatch.setenv("SEGDASH_WORKER_PROCESS", "0")
    job = start_training(ws, "discs", TrainConfig.from_dict(TINY))
    assert isinstance(job, TrainingJob)
    assert job.join(120) and job.snapshot().state == "done"


def test_the_run_is_listed_at_once_and_a_stop_while_the_worker_starts_is_kept(ws):
    job = start_training(ws, "discs", TrainConfig.from_dict({**TINY, "epochs": 500}))
    run = ws.run(job.run_id)  # recorded before the worker has even imported torch
    assert run is not None and run.state == "queued" and run.owner_pid == job.pid
    job.stop()  # no signal yet (it would kill a worker still starting): the catalog carries it
    assert job.join(120)
    snap = job.snapshot()
    assert snap.state == "stopped", snap.error
    assert ws.run(job.run_id).state == "stopped"


def test_a_worker_whose_server_is_killed_records_its_run_interrupted_at_once_and_it_resumes(ws, tmp_path):
    """The fault test of issue 25.7: the server (a plain Python process that starts the training as
    the Train page does) is SIGKILLed mid-training. Its worker notices at once (the end of its
    standard input), the run reads "interrupted" (not "stopped": nobody pressed Stop) well within a
    second, the worker stops at the next step keeping last.pt, the catalog counts exactly the epochs
    last.pt holds, and the run resumes from there."""
    import subprocess
    import sys

    from core.nn.checkpoint import read_checkpoint_info

    started = tmp_path / "run_id"
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from core.store.workspace import Workspace; "
            "from core.train.config import TrainConfig; from core.train.process import start_training; "
            f"cfg = TrainConfig.from_dict({dict(TINY, epochs=500)!r}); "
            f"job = start_training(Workspace({str(ws.root)!r}), 'discs', cfg); "
            f"open({str(started)!r}, 'w').write(job.run_id); time.sleep(600)",
        ],
        cwd=os.getcwd(),
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        _wait(lambda: started.exists() and started.read_text())
        run_id = started.read_text()
        _wait(lambda: ws.epochs_done([run_id])[run_id] >= 1 and ws.run(run_id).progress.get("step"))
    finally:
        server.kill()
        killed = time.monotonic()
        server.wait()
    _wait(lambda: ws.run(run_id).state != "running", timeout=60)
    latency = time.monotonic() - killed
    assert ws.run(run_id).state == "interrupted"
    print(f"run reads interrupted {latency:.2f} s after its server was killed")
    assert latency < 3.0  # measured 0.1-0.6 s on 2 loaded cores; generous for a busy CI machine
    log = ws.run_dir(run_id) / "worker.log"
    _wait(lambda: f"run {run_id}: interrupted" in log.read_text(), timeout=120)  # the worker's last word
    run = ws.run(run_id)
    assert run.state == "interrupted" and os.path.isfile(run.last_checkpoint)
    assert ws.epochs_done([run_id])[run_id] == read_checkpoint_info(run.last_checkpoint)["epoch"] >= 1
    done = ws.epochs_done([run_id])[run_id]
    job = start_training(ws, "discs", TrainConfig.from_dict({**TINY, "epochs": done + 1}), resume_from=run_id)
    assert job.join(180)
    snap = job.snapshot()
    assert snap.state == "done", snap.error
    assert snap.epoch == done + 1 and snap.resumed_from == run_id


def test_a_worker_told_to_terminate_records_its_run_interrupted(ws):
    """SIGTERM (a service manager stopping the server's group): the worker stops as its server's end
    would, the run is interrupted (resumable), not failed."""
    job = start_training(ws, "discs", TrainConfig.from_dict({**TINY, "epochs": 500}))
    _wait(lambda: job.snapshot().state == "running" and job.snapshot().step)
    os.kill(job.pid, signal.SIGTERM)
    assert job.join(120)
    assert job.snapshot().state == "interrupted", job.snapshot().error
    assert ws.run(job.run_id).state == "interrupted" and not ws.run(job.run_id).error


def test_the_end_of_the_servers_pipe_is_noticed_at_once():
    from core.train.process import watch_server

    read, write = os.pipe()
    try:
        gone = watch_server(read)
        os.write(write, b"more")  # anything but the end is no news
        assert not gone.wait(0.2)
        t = time.monotonic()
        os.close(write)  # what the kernel does to a killed server's descriptors
        assert gone.wait(5)
        assert time.monotonic() - t < 1.0
    finally:
        os.close(read)
