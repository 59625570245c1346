"""core.nn.device: torch's CPU threads are set on the thread that computes."""

import threading

import pytest
import torch

from core.nn.device import cpu_threads, use_cpu_threads


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
