"""core.nn.device: torch's CPU threads are set on the thread that computes; background work shares the CPU."""

import os
import sys
import threading

import pytest
import torch

from core.nn.device import background_threads, cpu_threads, share_cpu_for_background, use_cpu_threads


def test_threads_follow_the_environment_on_the_calling_thread(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("SEGDASH_THREADS", "1")
        assert cpu_threads() == (1, True)
        seen = []
        t = threading.Thread(target=lambda: seen.append((use_cpu_threads(), torch.get_num_threads())))
        t.start()
        t.join()
        assert seen == [(1, 1)]
        monkeypatch.setenv("SEGDASH_THREADS", "many")
        with pytest.raises(ValueError, match="SEGDASH_THREADS"):
            cpu_threads()
        monkeypatch.delenv("SEGDASH_THREADS")
        n, forced = cpu_threads()
        assert n >= 1 and not forced
    finally:
        torch.set_num_threads(before)


def test_background_threads_leave_a_core_from_four_cores_on(monkeypatch):
    monkeypatch.delenv("SEGDASH_THREADS", raising=False)
    monkeypatch.delenv("SEGDASH_SHARE_CPU", raising=False)
    assert background_threads(2) == (2, False)  # on 2 cores priority alone makes room (benchmarks/README.md)
    assert background_threads(3) == (3, False)
    assert background_threads(4) == (3, False)
    assert background_threads(64) == (63, False)
    monkeypatch.setenv("SEGDASH_THREADS", "5")
    assert background_threads(64) == (5, True)
    assert background_threads(2) == (5, True)
    monkeypatch.delenv("SEGDASH_THREADS")
    monkeypatch.setenv("SEGDASH_SHARE_CPU", "0")  # off: every core, as in the foreground
    assert background_threads(64) == cpu_threads()


def _on_a_thread(fn):
    seen = []

    def body():
        seen.append((fn(), torch.get_num_threads(), os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))

    t = threading.Thread(target=body)
    t.start()
    t.join()
    return seen[0]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_share_cpu_for_background_nices_only_its_thread(monkeypatch):
    before_threads, before_nice = torch.get_num_threads(), os.getpriority(os.PRIO_PROCESS, 0)
    try:
        for var in ("SEGDASH_THREADS", "SEGDASH_SHARE_CPU", "SEGDASH_NICE"):
            monkeypatch.delenv(var, raising=False)
        info, threads, nice = _on_a_thread(share_cpu_for_background)
        assert threads == info["threads"] == background_threads()[0]
        assert nice == min(19, before_nice + 10) and info["nice"] == nice - before_nice
        assert os.getpriority(os.PRIO_PROCESS, 0) == before_nice  # the calling (main) thread keeps its priority

        # later calls on that thread (select_device, the inferer) keep the background count
        def twice():
            share_cpu_for_background()
            return use_cpu_threads()

        monkeypatch.setenv("SEGDASH_THREADS", "1")  # still overrides
        monkeypatch.setenv("SEGDASH_NICE", "3")
        n, threads, nice = _on_a_thread(twice)
        assert n == threads == 1 and nice == min(19, before_nice + 3)

        monkeypatch.delenv("SEGDASH_THREADS")
        monkeypatch.setenv("SEGDASH_SHARE_CPU", "0")  # off: all cores, same priority
        info, threads, nice = _on_a_thread(share_cpu_for_background)
        assert info == {"threads": cpu_threads()[0], "nice": 0} and nice == before_nice

        monkeypatch.setenv("SEGDASH_SHARE_CPU", "1")
        monkeypatch.setenv("SEGDASH_THREADS", "many")  # reported by the computation, not here
        info, _, nice = _on_a_thread(share_cpu_for_background)
        assert info["nice"] == 0 and nice == before_nice
    finally:
        torch.set_num_threads(before_threads)
