"""Device settings shared by training and prediction: CPU threads, memory format, mixed precision.

CPU threads are set on the thread that does the work.

SegDash computes in threads that are not Python's main thread: the training worker, and
Streamlit's script thread for prediction. torch's OpenMP thread count is per calling thread:
``torch.get_num_threads()`` there reports the right number, but until ``torch.set_num_threads`` is
called *on that thread* its parallel regions run slower (measured on a 2-core VM: a training step
of the default network 20% slower in float32, 5-10% in bf16, than on the main thread). So every
entry point that computes on a CPU calls :func:`use_cpu_threads` first, on its own thread.

Background work shares the machine: :func:`share_cpu_for_background`, called first thing on the
training worker's thread and on a dataset prediction's thread, lowers that thread's priority (nice
10, per thread on Linux; the OpenMP team it starts inherits it) and, from 4 cores on, leaves one
core to the app (:func:`background_threads`). The entry points (``app.py``, ``python -m core``)
also set ``OMP_WAIT_POLICY=PASSIVE`` before torch loads OpenMP, so idle OpenMP threads sleep
instead of spinning on cores the server needs. Measured on a 2-core VM with 4 browser users
(``benchmarks/bench_load.py``): see ``benchmarks/README.md``. ``SEGDASH_SHARE_CPU=0`` turns it all
off; ``SEGDASH_NICE`` and ``SEGDASH_THREADS`` set the priority and the thread count.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable

import torch

from ..errors import SegDashError

__all__ = [
    "cpu_threads",
    "use_cpu_threads",
    "sharing_cpu",
    "use_worker_process",
    "worker_env",
    "on_stop_signal",
    "signal_stop",
    "server_gone",
    "background_threads",
    "share_cpu_for_background",
    "uses_channels_last",
    "cpu_has_bf16",
    "amp_dtype_for",
    "select_device",
    "resolve_device",
    "device_label",
]

log = logging.getLogger(__name__)


def cpu_threads() -> tuple[int, bool]:
    """``(threads to use on the CPU, whether the user forced it with $SEGDASH_THREADS)``.

    Default: all cores (``os.cpu_count()``), or torch's current count if that is higher.
    """
    env = os.environ.get("SEGDASH_THREADS", "").strip()
    if env:
        try:
            return max(1, int(env)), True
        except ValueError:
            raise SegDashError(f"SEGDASH_THREADS must be a whole number, got {env!r}") from None
    return max(1, os.cpu_count() or 1, torch.get_num_threads()), False


_THREAD = threading.local()  # .background: share_cpu_for_background was called on this thread


def use_cpu_threads() -> int:
    """Set torch's CPU thread count on the calling thread (see the module docstring); returns it:
    :func:`background_threads` on a thread marked by :func:`share_cpu_for_background`, else
    :func:`cpu_threads`."""
    n, _ = background_threads() if getattr(_THREAD, "background", False) else cpu_threads()
    torch.set_num_threads(n)
    return n


def _env_int(name: str) -> int | None:
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise SegDashError(f"{name} must be a whole number, got {text!r}") from None


def sharing_cpu() -> bool:
    """Whether background computations share the CPU (:func:`share_cpu_for_background`); off with
    ``SEGDASH_SHARE_CPU=0``."""
    return os.environ.get("SEGDASH_SHARE_CPU", "1").strip() != "0"


def use_worker_process() -> bool:
    """Whether the dashboard's background computations (training, a dataset prediction) run in a
    worker process of their own (the default: in the server's process they would wait for its
    interpreter lock while pages render) rather than a thread; ``SEGDASH_WORKER_PROCESS=0``: a thread."""
    return os.environ.get("SEGDASH_WORKER_PROCESS", "1").strip().lower() not in ("0", "false", "no", "off")


def worker_env() -> dict[str, str]:
    """The environment for ``python -m core...`` as a worker process: this process's, with the
    repository on ``PYTHONPATH`` and OpenMP's passive waiting set before its torch loads (as
    ``app.py`` sets it) while background work shares the CPU."""
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    if sharing_cpu():
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


_STOP_SIGNAL = getattr(signal, "SIGUSR1", None)  # what a worker process takes as "stop"; None on Windows


def on_stop_signal(stop: Callable[[], None]) -> None:
    """In a worker process: call ``stop`` when the server asks it to stop (:func:`signal_stop`).
    Install it before telling the server the worker is ready: until then the signal would kill it."""
    if _STOP_SIGNAL is not None:
        signal.signal(_STOP_SIGNAL, lambda *_: stop())


def signal_stop(proc: subprocess.Popen) -> None:
    """Ask a running worker process to stop (it must have called :func:`on_stop_signal`); nothing
    where the platform has no such signal (the catalog's stop request still reaches a training)."""
    if _STOP_SIGNAL is not None and proc.poll() is None:
        try:
            os.kill(proc.pid, _STOP_SIGNAL)
        except OSError:  # it ended meanwhile
            pass


def server_gone(parent: int | None) -> bool:
    """In a worker process started by the server ``parent``: True once that server has ended (the
    worker was handed to another parent)."""
    return bool(parent) and os.getppid() != parent


def background_threads(cores: int | None = None) -> tuple[int, bool]:
    """``(CPU threads for a background computation, whether $SEGDASH_THREADS forced it)``.

    ``$SEGDASH_THREADS`` when given; with ``SEGDASH_SHARE_CPU=0``, :func:`cpu_threads`'s count;
    else every core up to 3 cores and all but one from 4 on (``cores`` defaults to
    ``os.cpu_count()``), so the app's server, whose Python work runs on one core at a time, always
    finds one. On 2 cores both stay with training: there the lowered priority alone makes room for
    the app, and one thread would cost a third of the speed whenever nobody uses the app.

    Example:
        >>> background_threads(64)[0], background_threads(2)[0]  # doctest: +SKIP
        (63, 2)
    """
    forced = _env_int("SEGDASH_THREADS")
    if forced is not None:
        return max(1, forced), True
    if not sharing_cpu():
        return cpu_threads()
    n = max(1, cores if cores is not None else os.cpu_count() or 1)
    return (n if n <= 3 else n - 1), False


def share_cpu_for_background() -> dict[str, int]:
    """Make the calling thread a good neighbour of the app: call it first thing on a background
    thread that computes (the training worker, a dataset prediction), before any torch work there.

    On Linux the thread's nice value is raised by ``$SEGDASH_NICE`` (default 10; 0 keeps it): it is
    per thread, and the OpenMP threads it starts afterwards inherit it, so the app's own threads
    and other processes win the CPU when they need it and training takes the rest. torch's CPU
    thread count on this thread becomes :func:`background_threads`. ``SEGDASH_SHARE_CPU=0``
    turns both off (all cores, normal priority). Returns ``{"threads": n, "nice": added}``.
    """
    _THREAD.background = True
    try:
        threads = use_cpu_threads()
        want = _env_int("SEGDASH_NICE")
    except SegDashError as exc:  # a bad variable: the computation reports it when it selects its device
        log.warning("%s", exc)
        return {"threads": torch.get_num_threads(), "nice": 0}
    added = 0
    if sharing_cpu() and sys.platform.startswith("linux"):
        want = 10 if want is None else max(0, min(19, want))
        try:
            tid = threading.get_native_id()
            now = os.getpriority(os.PRIO_PROCESS, tid)
            target = min(19, max(now, now + want))
            if target != now:
                os.setpriority(os.PRIO_PROCESS, tid, target)
                added = target - now
        except OSError:  # not allowed here (a sandbox): keep the priority
            added = 0
    return {"threads": threads, "nice": added}


def uses_channels_last(device: torch.device) -> bool:
    """Whether models and inputs go channels-last on ``device``: cuDNN's fast path on CUDA, and
    about 1.4x faster convolutions on a CPU (oneDNN); MPS stays contiguous."""
    return device.type in ("cuda", "cpu")


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), where bf16 autocast makes
    convolutions about twice as fast; elsewhere it is emulated and slower than float32."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # a torch without these probes: stay in float32
        return False


def amp_dtype_for(device: torch.device, amp: bool) -> torch.dtype | None:
    """The autocast dtype on ``device`` with ``amp`` on, or ``None`` (float32).

    CUDA: bfloat16 where supported, else float16 (training adds a GradScaler). CPU: bfloat16 when
    the CPU has native bf16 (:func:`cpu_has_bf16`), unless ``SEGDASH_CPU_BF16=0``. MPS: float32.
    """
    if not amp:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and os.environ.get("SEGDASH_CPU_BF16", "1").strip() != "0" and cpu_has_bf16():
        return torch.bfloat16
    return None


def select_device(preference: str = "auto") -> torch.device:
    """The one device policy: ``cuda`` when available, else ``mps``, else ``cpu`` (``preference``
    forces one). Training and prediction both choose through it.

    On the CPU, torch's thread count is set, on the calling thread, to the number of cores (or
    torch's count if higher), or to ``$SEGDASH_THREADS`` when that is given (useful when other
    processes share the cores); see this module's docstring for why it must be set on that thread.
    """
    pref = preference.lower()
    if pref in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    if pref == "cuda":
        raise SegDashError("CUDA was requested but no CUDA GPU is available (device='cuda'); use 'auto' or 'cpu'")
    mps = getattr(torch.backends, "mps", None)
    if pref in ("auto", "mps") and mps is not None and mps.is_available():
        return torch.device("mps")
    if pref == "mps":
        raise SegDashError("MPS was requested but is not available; use 'auto' or 'cpu'")
    use_cpu_threads()  # on this (worker) thread: see the module docstring
    return torch.device("cpu")


def resolve_device(device: str | None = None) -> torch.device:
    """``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...) as a torch device; ``None`` or ``"auto"``:
    :func:`select_device`'s choice."""
    if device is None or str(device).lower() == "auto":
        return select_device("auto")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SegDashError(f"device {device!r} asked for, but no CUDA GPU is available")
    return dev


def device_label(device: torch.device) -> str:
    """Human description, e.g. ``cpu (2 threads)`` or ``cuda: NVIDIA H100``."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "mps (Apple GPU)"
    n = torch.get_num_threads()
    return f"cpu ({n} thread{'s' if n != 1 else ''})"
