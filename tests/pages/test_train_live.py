"""Train page: runs that other processes train (``python -m core train``, another server) are shown
live from the catalog with who trains them, and its Stop reaches them through the catalog."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.data.owner import Owner
from core.train.snapshot import TrainingSnapshot, progress_record

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def other_process():
    """A live process that is not this one (it sleeps), as the owner of a run."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    yield Owner(proc.pid, socket.gethostname())
    proc.kill()
    proc.wait()


def test_a_run_of_another_process_is_shown_live_and_stopped(ws_env, page, make_dataset, other_process):
    make_dataset("tiny", z=3, labeled=(0, 1))
    cat = ws_env.catalog
    cat.create_run(
        "cli-run", "tiny", {"epochs": 5, "steps_per_epoch": 10}, state="running", owner=other_process, origin="cli"
    )
    cat.update_run("cli-run", device="cpu (2 threads)")
    for epoch in (1, 2):
        cat.add_epoch("cli-run", epoch, {"train_loss": 1.0 / epoch, "val_loss": 1.0, "val_dice": 0.3 * epoch})
    snap = TrainingSnapshot("cli-run", "tiny", "running", epoch=2, epochs=5, step=4, steps_per_epoch=10, eta_s=600.0)
    cat.beat("cli-run", progress_record(snap), state="running")

    at = AppTest.from_file(page("train.py"), default_timeout=60).run()
    assert not at.exception
    head = " ".join(m.value for m in at.markdown)
    assert "cli-run" in head and f"CLI {other_process.pid}@{other_process.host}" in head and "cpu (2 threads)" in head
    table = at.dataframe[0].value
    assert list(table["run id"]) == ["cli-run"] and list(table["state"]) == ["running"]
    assert list(table["epochs"]) == ["2/5"] and table["trained by"].iloc[0].startswith("CLI ")
    assert at.get_by_key("train_live_chart")  # its curves, from the catalog's epochs
    assert not at.button(key="train_stop").disabled

    at.button(key="train_stop").click().run()
    assert not at.exception
    assert ws_env.run("cli-run").stop_requested == 1
    assert any(i.value.startswith("Stopping ...") for i in at.info)
    assert at.button(key="train_stop").disabled


@pytest.mark.slow
def test_a_cli_training_is_listed_running_and_stopped_from_the_page(ws_env, page, make_dataset, tmp_path):
    make_dataset("tiny", z=3, labeled=(0, 1))
    cfg = tmp_path / "cfg.json"
    cfg.write_text(
        json.dumps(
            {
                "model": {"arch": "classic", "classic_width": 4},
                "patch_size": 32,
                "batch_size": 2,
                "steps_per_epoch": 5000,
                "epochs": 2,
                "amp": False,
            }
        )
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SEGDASH_THREADS": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "core",
            "train",
            "--dataset",
            "tiny",
            "--config",
            str(cfg),
            "--workspace",
            str(ws_env.root),
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not [r for r in ws_env.runs("tiny") if r.state == "running"]:
            assert proc.poll() is None, "the CLI training ended early"
            time.sleep(0.2)
        (run,) = ws_env.runs("tiny")
        assert run.state == "running" and run.origin == "cli" and run.owner_pid == proc.pid

        at = AppTest.from_file(page("train.py"), default_timeout=60).run()
        assert not at.exception
        assert any(run.run_id in m.value and f"CLI {proc.pid}@" in m.value for m in at.markdown)
        assert list(at.dataframe[0].value["state"]) == ["running"]
        at.button(key="train_stop").click().run()
        assert not at.exception and ws_env.run(run.run_id).stop_requested == 1
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["run_id"] == run.run_id and summary["state"] == "stopped"
    assert ws_env.run(run.run_id).state == "stopped"
    at.run()
    assert not at.exception and list(at.dataframe[0].value["state"]) == ["stopped"]
    assert any("Stopped after epoch" in w.value for w in at.warning)  # the outcome of the run it followed
    assert at.button(key="train_stop").disabled
