"""core.train.distributed: ``torchrun --nproc_per_node=2 -m core train`` on the CPU (gloo) against one
process with the same global batch, and the hooks' single-process behaviour."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core.errors import SegDashError
from core.nn.checkpoint import load_checkpoint
from core.store.workspace import Workspace
from core.train import distributed
from core.train.headless import train_headless
from tests.core.test_training import _discs

ROOT = Path(__file__).resolve().parents[2]

# no augmentation and a plain BCE loss: the mean over the global batch is then the mean of the ranks'
# means, so two ranks differ from one process only by batch norm (each rank's own half of the batch)
CONFIG = {
    "model": {"arch": "classic", "classic_width": 4},
    "patch_size": 64,
    "batch_size": 4,
    "steps_per_epoch": 4,
    "epochs": 3,
    "lr": 1e-2,
    "val_fraction": 0.25,
    "loss": "bce",
    "amp": False,
    "device": "cpu",
    "augment": {"flips": False, "rot90": False},
}


@pytest.fixture
def ws(tmp_path) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    imgs, masks = _discs(8, 64, 2, seed=0)
    ws.create_dataset("discs", imgs, masks, ["background", "disc"])
    return ws


def test_torchrun_two_processes_match_one_process(ws, tmp_path, monkeypatch):
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps(CONFIG))
    env = {**os.environ, "SEGDASH_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += ["-m", "core", "train", "--workspace", str(ws.root), "--dataset", "discs", "--config", str(cfg_file)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert sorted(s["rank"] for s in lines) == [0, 1] and {s["world_size"] for s in lines} == {2}
    main = next(s for s in lines if s["rank"] == 0)
    assert main["state"] == "done" and len({s["run_id"] for s in lines}) == 1

    # one run record, written by rank 0, with its epochs, checkpoints and bundle
    runs = ws.catalog.runs()
    assert [r["run_id"] for r in runs] == [main["run_id"]] and runs[0]["state"] == "done"
    ddp = ws.catalog.epochs(main["run_id"])
    assert [h["epoch"] for h in ddp] == [1, 2, 3]
    losses = [h["train_loss"] for h in ddp]
    assert losses[-1] < losses[0] - 0.05, losses
    last = load_checkpoint(runs[0]["last_checkpoint"])
    assert last.epoch == 3 and len(last.history) == 3 and last.state["optimizer"] is not None
    assert not any(k.startswith("module.") for k in last.model.state_dict())
    assert load_checkpoint(runs[0]["best_checkpoint"]).class_names == ("background", "disc")
    assert Path(main["bundle"]).is_file()
    assert sorted(p.name for p in ws.root.joinpath("runs").iterdir()) == [main["run_id"]]

    # one process, same global batch: the same curve within batch norm's difference
    monkeypatch.setenv("SEGDASH_THREADS", "1")
    single = train_headless(ws, "discs", config=CONFIG)
    one = ws.catalog.epochs(single["run_id"])
    for key in ("train_loss", "val_loss"):
        np.testing.assert_allclose([h[key] for h in ddp], [h[key] for h in one], rtol=0.02, err_msg=key)
    assert [h["lr"] for h in ddp] == pytest.approx([h["lr"] for h in one])


def test_torchrun_env_and_single_process_hooks():
    env = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    assert distributed.torchrun_env(env) == distributed.RankInfo(3, 4, 1, 2)
    assert distributed.torchrun_env({}) is None
    with pytest.raises(SegDashError):
        distributed.torchrun_env({"RANK": "4", "WORLD_SIZE": "4"})
    # outside torchrun every hook is the identity
    assert not distributed.active() and distributed.is_main() and distributed.world_size() == 1
    model = torch.nn.Conv2d(1, 1, 3)
    assert distributed.wrap(model, torch.device("cpu")) is model
    assert distributed.local_batch(5) == 5 and distributed.sampler([1, 2]) is None
    assert distributed.shard([1, 2, 3]) == [1, 2, 3] and distributed.rank_seed(7) == 7
    cm = np.eye(2, dtype=np.int64)
    assert distributed.reduce_sum(cm, 1.5, 2) == (cm, 1.5, 2)


def test_global_batch_must_divide_among_the_ranks(monkeypatch):
    monkeypatch.setattr(distributed, "world_size", lambda: 4)
    assert distributed.local_batch(8) == 2
    with pytest.raises(SegDashError, match="multiple of the 4 processes"):
        distributed.local_batch(6)


def test_a_stop_on_any_rank_stops_every_rank(monkeypatch):
    from core.train.loop import Callbacks, Stopped

    votes = []

    def reduce_sum(*values):  # this rank's vote, plus the other rank's (given by the test)
        votes.append(values[0])
        return (values[0] + other[0],)

    monkeypatch.setattr(distributed, "active", lambda: True)
    monkeypatch.setattr(distributed, "reduce_sum", reduce_sum)
    other = [0.0]
    asked = []
    together = distributed.stop_together(lambda: asked.append(1))
    together()  # nobody stops
    other[0] = 1.0
    with pytest.raises(Stopped):  # the other rank stops: so does this one
        together()

    def stop():
        raise Stopped()

    other[0] = 0.0
    with pytest.raises(Stopped):  # this rank stops, after voting so that the others stop too
        distributed.stop_together(stop)()
    assert votes == [0.0, 0.0, 1.0] and len(asked) == 2

    # only rank 0 records: the others get callbacks that check for a stop and do nothing else
    class Recorder(Callbacks):
        def check_stop(self):
            asked.append("recorder")

    rec = Recorder()
    assert distributed.callbacks_for_rank(rec) is rec
    monkeypatch.setattr(distributed, "is_main", lambda: False)
    follower = distributed.callbacks_for_rank(rec)
    assert type(follower) is Callbacks
    follower.check_stop()
    assert asked[-1] == "recorder"
