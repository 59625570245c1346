"""CPU threads for torch work, set on the thread that does the work.

SegDash computes in threads that are not Python's main thread: the training worker, and
Streamlit's script thread for prediction. torch's OpenMP thread count is per calling thread:
``torch.get_num_threads()`` there reports the right number, but until ``torch.set_num_threads`` is
called *on that thread* its parallel regions run slower (measured on a 2-core VM: a training step
of the default network 20% slower in float32, 5-10% in bf16, than on the main thread). So every
entry point that computes on a CPU calls :func:`use_cpu_threads` first, on its own thread.
"""

from __future__ import annotations

import os

import torch

__all__ = ["cpu_threads", "use_cpu_threads"]


def cpu_threads() -> tuple[int, bool]:
    """``(threads to use on the CPU, whether the user forced it with $SEGDASH_THREADS)``.

    Default: all cores (``os.cpu_count()``), or torch's current count if that is higher.
    """
    env = os.environ.get("SEGDASH_THREADS", "").strip()
    if env:
        try:
            return max(1, int(env)), True
        except ValueError:
            raise ValueError(f"SEGDASH_THREADS must be a whole number, got {env!r}") from None
    return max(1, os.cpu_count() or 1, torch.get_num_threads()), False


def use_cpu_threads() -> int:
    """Set torch's CPU thread count on the calling thread (see the module docstring); returns it."""
    n, _ = cpu_threads()
    torch.set_num_threads(n)
    return n
