"""core.workflow.live warms up what a round needs before the press: once per process, the imports
this process predicts with (MONAI's inference); and a spare worker process (core.train.spare), at a
lower priority, that has imported what training needs (smp's losses too) and waits for the round's
request, so the first step does not wait for a process start and those imports after the press."""

import os
import subprocess
import sys
import time

from core.train import spare


def test_warm_up_imports_what_a_round_needs_once_in_the_background(monkeypatch):
    import core.workflow.live as live

    monkeypatch.setenv("SEGDASH_WORKER_PROCESS", "1")
    monkeypatch.setattr(spare, "_SPARE", [])
    first = live.warm_up()  # the Label page calls it as it renders
    assert live.warm_up() is first  # once per process
    first.join(120)
    assert not first.is_alive()
    assert "core.predict.inferer" in sys.modules  # this process predicts; the spare imports what training needs

    (worker,) = spare._SPARE  # one spare, however often the page renders
    assert worker.args[-1] == "--spare"
    if sys.platform.startswith("linux"):  # its imports leave the CPU to the server's reruns
        assert os.getpriority(os.PRIO_PROCESS, worker.pid) >= os.getpriority(os.PRIO_PROCESS, 0)
    t0 = time.monotonic()
    assert spare.wait_ready(180), "the spare worker never said it was ready"
    ready_s = time.monotonic() - t0
    assert spare.wait_ready(0)  # it stays ready
    taken = spare.take()
    assert taken is worker and spare.take() is None
    spare.forget_output(taken)
    taken.stdin.close()  # its server ends before sending a request: it ends, having done nothing
    assert taken.wait(30) == 0, ready_s


def test_a_dead_spare_is_not_taken(monkeypatch):
    dead = subprocess.Popen([sys.executable, "-c", "pass"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    dead.wait()
    monkeypatch.setattr(spare, "_SPARE", [dead])
    assert spare.take() is None  # a fresh worker is started instead


def test_a_spare_started_under_another_environment_is_ended_not_taken(monkeypatch):
    waiting = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    monkeypatch.setattr(spare, "_SPARE", [waiting])
    monkeypatch.setitem(spare._ENV, waiting.pid, {"SEGDASH_THREADS": "7"})
    assert spare.take() is None
    assert waiting.wait(30) == 0  # the end of its input ended it
