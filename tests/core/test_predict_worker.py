"""A dataset prediction in a worker process (core.predict.worker), as the Predictions page runs it."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from core.predict.dataset import PredictionJob, prediction_jobs
from core.predict.stored import list_predictions
from tests.synthetic import tiny_checkpoint

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.skipif(os.name != "posix", reason="POSIX signals")]


@pytest.fixture
def many(ws, tmp_path):
    images = np.random.default_rng(0).integers(0, 255, (300, 96, 96), dtype=np.uint8)
    ws.create_dataset("many", images, None, ["bg", "cell"])
    return ws, tiny_checkpoint(tmp_path / "best.pt", ["bg", "cell"], width=4, run_id="r1")


def _first_slices(job: PredictionJob) -> None:
    t = time.monotonic()
    while job.snapshot().done < 2:
        assert job.is_active() and time.monotonic() - t < 120, job.snapshot()
        time.sleep(0.02)


def test_the_worker_predicts_reports_progress_and_a_cancel_keeps_the_slices_done(many):
    ws, ckpt = many
    job = PredictionJob(ws, "many", ckpt, run_id="r1")
    assert job.process  # the default: outside the server's process
    prediction_jobs(ws, "many", start=job)
    _first_slices(job)
    assert job._proc is not None and job._proc.pid != os.getpid()
    job.cancel()
    assert job.join(120)
    snap = job.snapshot()
    assert snap.state == "cancelled", snap.error
    assert 2 <= snap.result.n_done < 300 and snap.result.masks_path.is_file()
    assert "r1" in list_predictions(ws, "many")  # the finished slices are stored for review


def test_a_worker_that_dies_fails_the_job_with_the_reason(many):
    ws, ckpt = many
    job = prediction_jobs(ws, "many", start=PredictionJob(ws, "many", ckpt, run_id="r2"))
    _first_slices(job)
    job._proc.kill()
    assert job.join(60)
    snap = job.snapshot()
    assert snap.state == "failed" and "ended unexpectedly" in snap.error


def test_a_refusal_comes_back_as_the_users_message(ws, tmp_path):
    ws.create_dataset("three", np.zeros((2, 32, 32), np.uint8), None, ["bg", "a", "b"])
    ckpt = tiny_checkpoint(tmp_path / "best.pt", ["bg", "cell"], width=4)
    job = prediction_jobs(ws, "three", start=PredictionJob(ws, "three", ckpt))
    assert job.join(120)
    snap = job.snapshot()
    assert snap.state == "failed" and "class" in snap.error and "Traceback" not in snap.error
