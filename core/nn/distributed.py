"""Several processes under torchrun, shared by training and prediction: where this process is
(:func:`torchrun_env`, :func:`rank`, :func:`world_size`), joining the process group (:func:`init`:
``nccl`` on GPUs, ``gloo`` on CPUs) and the few collectives SegDash needs (:func:`reduce_sum`,
:func:`barrier`, :func:`broadcast_object`). Outside torchrun every function here answers as one
process of one and communicates nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from ..errors import SegDashError

__all__ = [
    "RankInfo",
    "torchrun_env",
    "init",
    "active",
    "rank",
    "world_size",
    "is_main",
    "reduce_sum",
    "barrier",
    "broadcast_object",
]


@dataclass(frozen=True)
class RankInfo:
    """Where this process is in a torchrun launch: ``rank`` of ``world_size`` in all, ``local_rank``
    of ``local_world_size`` on this node."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int


def torchrun_env(environ: dict[str, str] | None = None) -> RankInfo | None:
    """This process's place in a torchrun launch, from the variables torchrun sets; ``None`` when not
    started by torchrun (no ``WORLD_SIZE``).

    Example:
        >>> torchrun_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"})
        RankInfo(rank=1, world_size=2, local_rank=1, local_world_size=2)
        >>> torchrun_env({}) is None
        True
    """
    env = os.environ if environ is None else environ
    if not env.get("WORLD_SIZE"):
        return None
    try:
        world = int(env["WORLD_SIZE"])
        info = RankInfo(
            rank=int(env.get("RANK", "0")),
            world_size=world,
            local_rank=int(env.get("LOCAL_RANK", "0")),
            local_world_size=int(env.get("LOCAL_WORLD_SIZE", str(world))),
        )
    except ValueError:
        raise SegDashError("RANK, WORLD_SIZE, LOCAL_RANK must be whole numbers (as torchrun sets them)") from None
    if not 0 <= info.rank < world or not 0 <= info.local_rank < info.local_world_size:
        raise SegDashError(f"rank {info.rank} of {world} (local {info.local_rank}) is out of range")
    return info


def init(info: RankInfo | None = None) -> RankInfo | None:
    """Join torchrun's process group (once): ``nccl`` when CUDA is available (this rank on GPU
    ``local_rank``), else ``gloo``. Without torchrun (``info`` and the environment empty) it does
    nothing and returns ``None``.

    On CPUs the cores of a node are shared among its ranks: unless ``SEGDASH_THREADS`` says
    otherwise, each rank uses ``cores / local_world_size`` threads.
    """
    info = info or torchrun_env()
    if info is None:
        return None
    if not dist.is_available():
        raise SegDashError("this PyTorch has no torch.distributed: train in one process instead")
    if not dist.is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(info.local_rank % torch.cuda.device_count())
        elif not os.environ.get("SEGDASH_THREADS"):
            os.environ["SEGDASH_THREADS"] = str(max(1, (os.cpu_count() or 1) // info.local_world_size))
        dist.init_process_group("nccl" if cuda else "gloo", rank=info.rank, world_size=info.world_size)
    return info


def active() -> bool:
    """True inside an initialised process group of more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 outside a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """Ranks in all (1 outside a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """True on rank 0, the one that records the run (and in a single process)."""
    return rank() == 0


def reduce_sum(*values: Any) -> tuple[Any, ...]:
    """Each value (a number or a numpy array) summed over the ranks; the values themselves in one
    process. Every rank must call it with values of the same shapes."""
    if not active():
        return values
    arrays = [np.asarray(v, dtype=np.float64) for v in values]
    flat = torch.from_numpy(np.concatenate([a.reshape(-1) for a in arrays]))
    if dist.get_backend() == "nccl":
        flat = flat.cuda()
    dist.all_reduce(flat)
    flat_np = flat.cpu().numpy()
    out, i = [], 0
    for v, a in zip(values, arrays):
        part = flat_np[i : i + a.size].reshape(a.shape)
        i += a.size
        if isinstance(v, np.ndarray):
            out.append(np.rint(part).astype(v.dtype) if np.issubdtype(v.dtype, np.integer) else part.astype(v.dtype))
        elif isinstance(v, (int, np.integer)):
            out.append(int(round(float(part))))
        else:
            out.append(float(part))
    return tuple(out)


def barrier() -> None:
    """Wait until every rank gets here (nothing in one process)."""
    if active():
        dist.barrier()


def broadcast_object(value: Any) -> Any:
    """Rank 0's ``value`` (any picklable object) on every rank; ``value`` itself in one process."""
    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
