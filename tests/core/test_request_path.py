"""Every way of starting a training run goes through one request path: the Train page (the page
itself under AppTest, and the worker process it starts), ``python -m core train``, torchrun's ranks
and "Train on my strokes" (through the same worker process) each build a checked
:class:`~core.train.request.TrainingRequest` and reach the same :func:`core.train.prepare.prepare_run`
with it (replaced here by a recorder that stops the run there, so nothing trains)."""

from __future__ import annotations

import json
import os

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.cli import main as cli_main
from core.errors import SegDashError
from core.nn.distributed import RankInfo
from core.store.workspace import Workspace
from core.train import distributed, launch, prepare, process, spare
from core.train.config import TrainConfig
from core.train.headless import train_headless
from core.train.registry import registry
from core.train.request import TrainingRequest
from core.workflow.live import start_round, warm_up
from tests.core.test_training import TINY, _discs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REACHED = "prepare_run reached"


@pytest.fixture
def ws(ws: Workspace) -> Workspace:
    imgs, masks = _discs(4, 64, 2, seed=0)
    ws.create_dataset("discs", imgs, masks, ["background", "disc"])
    return ws


@pytest.fixture
def reached(monkeypatch) -> list[TrainingRequest]:
    """The requests that reached ``prepare_run``, in order."""
    seen: list[TrainingRequest] = []

    def recorder(request: TrainingRequest, workspace: Workspace | None = None):
        seen.append(request)
        raise SegDashError(REACHED)

    monkeypatch.setattr(prepare, "prepare_run", recorder)
    return seen


def _ended(run_id: str) -> None:
    job = registry().get(run_id)
    assert job is not None and job.join(60)
    assert REACHED in job.snapshot().error


def _checked(request: TrainingRequest, ws: Workspace, origin: str) -> None:
    assert isinstance(request, TrainingRequest) and request.dataset == "discs"
    assert request.workspace == str(ws.root) and request.origin == origin
    assert request.config.model.n_classes == 2  # the dataset's, in the config
    assert TrainingRequest.from_json(request.to_json()) == request


def test_the_train_page_start_button(ws, reached, monkeypatch):
    monkeypatch.setenv("SEGDASH_WORKSPACE", str(ws.root))
    monkeypatch.setenv("SEGDASH_WORKER_PROCESS", "0")  # the job in this process, where the recorder is
    st.cache_resource.clear()
    at = AppTest.from_file(os.path.join(ROOT, "pages", "train.py"), default_timeout=60)
    at.session_state["dataset"] = "discs"
    at.run()
    at.button(key="train_start").click().run()
    assert not at.exception
    run_id = at.session_state["train_run_id"]
    _ended(run_id)
    st.cache_resource.clear()
    assert [r.run_id for r in reached] == [run_id]
    _checked(reached[0], ws, "app")


@pytest.fixture
def sent(monkeypatch) -> list[bytes]:
    """The lines sent to worker processes, which this test plays itself: ``subprocess.Popen`` of
    ``python -m core.train.process`` (fresh or spare) replaced by one that keeps what it is sent."""
    lines: list[bytes] = []

    class Worker:
        def __init__(self, args, *more, **kwargs):
            self.args, self.pid, self.returncode, self.stdin = args, os.getpid(), None, self

        def write(self, data: bytes) -> None:
            lines.append(data)

        def flush(self) -> None: ...

        def close(self) -> None: ...

        def poll(self) -> int | None:
            return self.returncode

        def kill(self) -> None:
            self.returncode = -9

    monkeypatch.setattr(process.subprocess, "Popen", Worker)
    monkeypatch.setattr(spare, "_SPARE", [])  # no spare of another test
    monkeypatch.setenv("SEGDASH_WORKER_PROCESS", "1")
    return lines


def test_the_worker_process_runs_the_request_its_server_checked(ws, reached, sent):
    """The dashboard's default: the server checks the request and sends it to ``python -m
    core.train.process``, whose job is made from that request (here in this process: the worker's
    start is replaced by one that keeps the line it is sent)."""
    handle = process.start_training(ws, "discs", TrainConfig.from_dict(TINY))
    assert isinstance(handle, process.ProcessJob) and ws.run(handle.run_id).state == "queued"
    job = process.worker_job(json.loads(sent[0]))  # what the worker's main() does with the line
    assert job.request == handle.request
    job.start()  # its row, recorded for the worker by the server, is taken over, not recorded again
    assert job.join(60) and REACHED in job.snapshot().error
    handle._proc.returncode = 0
    assert handle.join(30)
    assert reached == [handle.request]
    _checked(reached[0], ws, "app")


def test_the_command_line(ws, reached, tmp_path, capsys):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(TINY))
    code = cli_main(["train", "--workspace", str(ws.root), "--dataset", "discs", "--config", str(cfg), "--quiet"])
    assert code == 1 and REACHED in capsys.readouterr().err  # the run failed where the recorder stopped it
    assert len(reached) == 1 and ws.run(reached[0].run_id).state == "failed"
    _checked(reached[0], ws, "cli")
    assert reached[0].config.epochs == TINY["epochs"]


def test_every_torchrun_rank(ws, reached, monkeypatch):
    """Rank 0 checks the request and sends it; rank 1 runs the very same request (played here one
    after the other, with the process group's calls replaced)."""
    sent: list[tuple] = []
    monkeypatch.setattr(launch, "init", lambda: RankInfo(0, 2, 0, 2))
    monkeypatch.setattr(launch, "active", lambda: True)
    monkeypatch.setattr(distributed, "active", lambda: True)  # for the origin recorded
    monkeypatch.setattr(launch, "barrier", lambda: None)
    monkeypatch.setattr(launch, "broadcast_object", lambda obj: sent.append(obj) or obj)
    summary = train_headless(ws, "discs", config=TINY)
    assert summary["state"] == "failed" and REACHED in summary["error"]
    _checked(reached[0], ws, "torchrun")

    monkeypatch.setattr(launch, "is_main", lambda: False)
    monkeypatch.setattr(launch, "broadcast_object", lambda obj: sent[0])  # rank 0's request
    job = launch.start_job(ws, lambda: pytest.fail("only rank 0 checks the request"))
    assert isinstance(job.workspace, distributed.FollowerWorkspace) and job.join(60)
    assert reached[1] == reached[0]


def test_train_on_my_strokes(ws, reached, sent):
    """A round is a request with a deadline sent to the Train page's worker process: the spare one
    the Label page started ahead (``warm_up``), which takes it as the worker's ``main()`` does."""
    import time

    warm_up()  # the Label page opens: a worker started ahead, waiting for its request
    (started,) = spare._SPARE
    assert started.args[-1] == "--spare"
    pressed = time.time()
    r = start_round(ws, "discs", z=0, budget_s=5.0)
    assert isinstance(r.job, process.ProcessJob) and r.job._proc is started and not spare._SPARE
    assert registry().active(ws) is r.job and ws.run(r.run_id).origin == "live"
    spec = json.loads(sent[0])
    assert spec["log"] == str(ws.run_dir(r.run_id) / "worker.log")  # its output goes there from now on
    job = process.worker_job(spec)  # what the worker's main() does with the line
    job.start()
    assert job.join(60) and REACHED in job.snapshot().error
    started.returncode = 0
    assert r.join(60) and r.state == "failed" and REACHED in r.error  # the page's poll reads it from the catalog
    assert reached == [r.job.request] and reached[0].run_id == r.run_id
    _checked(reached[0], ws, "live")
    assert reached[0].deadline == pytest.approx(pressed + 5.0, abs=1.0)


def test_a_request_is_checked_once_and_keeps_its_deadline(ws, tmp_path):
    """What check_request refuses and sets; a job stops at its request's deadline, keeping last.pt."""
    import time

    from core.nn.checkpoint import load_checkpoint
    from core.train.job import TrainingJob
    from core.train.request import check_request

    ws.create_dataset("bare", _discs(2, 64, 2, seed=1)[0], None, ["background", "disc"])
    with pytest.raises(SegDashError, match="no labeled slices"):
        check_request(ws, "bare", TINY)
    with pytest.raises(SegDashError, match=r"cannot resume .*\(latest runs: none\)"):
        check_request(ws, "discs", TINY, resume="nothing-here")
    with pytest.raises(SegDashError, match="deadline"):
        check_request(ws, "discs", TINY, deadline=-1)
    req = check_request(ws, "discs", {**TINY, "model": {"arch": "classic", "classic_width": 4, "n_classes": 7}})
    assert req.config.model.n_classes == 2 and req.splits["val_fraction"] == TINY["val_fraction"]
    assert ws.runs() == []  # checking records nothing

    slow = TrainConfig.from_dict({**TINY, "epochs": 50, "steps_per_epoch": 1000})
    job = registry().start(TrainingJob(ws, "discs", slow, deadline=time.time() + 3.0))
    assert job.join(60)
    snap = job.snapshot()
    assert snap.state == "stopped" and snap.epoch == 0 and snap.last_checkpoint
    assert load_checkpoint(snap.last_checkpoint).extra["partial_epoch"] is True
    assert ws.run(job.run_id).state == "stopped"
