"""Device settings shared by training and prediction: CPU threads, memory format, mixed precision.

CPU threads are set on the thread that does the work.

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

from ..errors import SegDashError

__all__ = [
    "cpu_threads",
    "use_cpu_threads",
    "uses_channels_last",
    "cpu_has_bf16",
    "amp_dtype_for",
    "select_device",
    "resolve_device",
    "device_label",
]


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


def use_cpu_threads() -> int:
    """Set torch's CPU thread count on the calling thread (see the module docstring); returns it."""
    n, _ = cpu_threads()
    torch.set_num_threads(n)
    return n


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
