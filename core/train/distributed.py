"""Training on several processes: ``torchrun --nproc_per_node=N -m core train ...`` runs the same
:class:`~core.train.job.TrainingJob` and :func:`~core.train.loop.fit` on every process (a *rank*),
with PyTorch's DistributedDataParallel (DDP). Nothing here is used outside torchrun: every hook
below is the identity in a single process.

How the work is shared (``W`` ranks):

- **Process group**: :func:`init` reads torchrun's environment (``RANK``, ``WORLD_SIZE``,
  ``LOCAL_RANK``, ``MASTER_ADDR`` ...; :func:`torchrun_env`) and joins the group: ``nccl`` on GPUs
  (rank ``r`` of a node on GPU ``LOCAL_RANK``), ``gloo`` on CPUs. Across nodes, torchrun's usual
  rendezvous flags (``--nnodes``, ``--rdzv-endpoint``) do the rest.
- **Batches**: ``batch_size`` in the config is the *global* batch, so the same config file trains
  the same recipe on 1 or W processes. Every rank draws the epoch's patch positions from the same
  seed; a :class:`~torch.utils.data.distributed.DistributedSampler` (no shuffling) hands rank ``r``
  the patches ``r, r + W, ...``, so step ``s`` on the W ranks together sees exactly the batch ``s``
  of a single process, ``batch_size / W`` patches each (:func:`local_batch`; it must divide).
  Augmentation draws from a per-rank seed (:func:`rank_seed`; rank 0 keeps the single-process one).
- **Gradients**: the network is wrapped in DDP (:func:`wrap`), which averages gradients over the
  ranks in its backward pass; on CUDA batch norm becomes ``SyncBatchNorm`` (statistics over the
  global batch). gloo has no SyncBatchNorm, so on CPUs each rank normalises with its own part of the
  batch: the losses then differ from one process by a little, not by design.
- **Metrics**: the training loss and the validation confusion matrix and loss are summed over the
  ranks (:func:`reduce_sum`), each rank validating its share of the validation slices (:func:`shard`)
  with rank 0's batch-norm statistics (:func:`sync_buffers`), so every rank gets the same row.
- **Stop**: a stop asked on any rank (Ctrl-C, the Train page's Stop through the catalog) stops every
  rank at the same step (:func:`stop_together`); rank 0 then keeps ``last.pt`` as usual.
- **Recording**: rank 0 checks the training request and sends it to the others
  (:func:`core.train.launch.start_job`), then runs the job as in one process: catalog row (so the
  Train page shows the run), epochs, ``last.pt`` / ``best.pt``, ``bundle.zip``. The others run the
  same request on a :class:`FollowerWorkspace`: the same datasets, run writes dropped, and only the
  handlers every rank needs (validation, the stop check: :func:`handlers_for_rank`).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.distributed as dist
from torch import nn

from ..errors import SegDashError
from ..nn.distributed import (  # noqa: F401  (re-exported with the verbs below)
    RankInfo,
    active,
    barrier,
    broadcast_object,
    init,
    is_main,
    rank,
    reduce_sum,
    torchrun_env,
    world_size,
)
from ..store.workspace import Workspace
from .events import Callbacks, Stopped

# the process group's own verbs (RankInfo, torchrun_env, init, active, rank, world_size, is_main, barrier,
# broadcast_object, reduce_sum) come from core.nn.distributed and are used here under the same names
__all__ = [
    "local_batch",
    "sampler",
    "wrap",
    "shard",
    "sync_buffers",
    "rank_seed",
    "stop_together",
    "callbacks_for_rank",
    "handlers_for_rank",
    "FollowerWorkspace",
]

_RANK_SEED_STRIDE = 1_000_003  # rank r's augmentation seed is the single-process one + r * this


# -- hooks of fit() --------------------------------------------------------------------------


def local_batch(batch_size: int) -> int:
    """This rank's share of the global ``batch_size`` (which the ranks must divide)."""
    w = world_size()
    if batch_size % w:
        raise SegDashError(
            f"batch_size {batch_size} is the global batch and must be a multiple of the {w} processes; "
            f"use {max(w, batch_size // w * w)} or {(batch_size // w + 1) * w}"
        )
    return batch_size // w


def sampler(dataset: torch.utils.data.Dataset) -> torch.utils.data.Sampler | None:
    """A :class:`~torch.utils.data.distributed.DistributedSampler` without shuffling (rank ``r``
    takes items ``r, r + W, ...``), or ``None`` (the DataLoader's own order) in one process."""
    if not active():
        return None
    return torch.utils.data.distributed.DistributedSampler(dataset, shuffle=False, drop_last=False)


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in DistributedDataParallel (batch norm synchronised on CUDA), or ``model`` itself in
    one process. The wrapper shares ``model``'s parameters: optimise and save ``model``."""
    if not active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # children replaced in place, same parameters
        return DistributedDataParallel(model, device_ids=[device.index or torch.cuda.current_device()])
    return DistributedDataParallel(model)


def shard(items: Sequence[Any]) -> list[Any]:
    """This rank's share of ``items`` (``items[rank::world_size]``); all of them in one process."""
    return list(items[rank() :: world_size()]) if active() else list(items)


def sync_buffers(model: nn.Module) -> None:
    """Rank 0's buffers (batch-norm running statistics) on every rank, before validating."""
    if active():
        for buf in model.buffers():
            dist.broadcast(buf.data, src=0)


def rank_seed(seed: int) -> int:
    """A seed for this rank's random draws: ``seed`` on rank 0 (and in one process), another per rank."""
    return seed + _RANK_SEED_STRIDE * rank()


def stop_together(check_stop: Callable[[], None]) -> Callable[[], None]:
    """``check_stop`` as every rank's joint decision: each asks its own, and when any would stop, all
    raise :class:`~core.train.events.Stopped` at the same step (a rank that stopped alone would leave
    the others waiting in the gradients' all-reduce). One small all-reduce per call; ``check_stop``
    itself in one process."""
    if not active():
        return check_stop

    def together() -> None:
        try:
            check_stop()
            flag = 0.0
        except Stopped:
            flag = 1.0
        (votes,) = reduce_sum(flag)
        if votes > 0:
            raise Stopped()

    return together


def callbacks_for_rank(callbacks: Any) -> Any:
    """``callbacks`` on rank 0 (and in one process); on the other ranks the no-op
    :class:`~core.train.events.Callbacks` forwarding only ``check_stop``: rank 0 records the run."""
    if is_main():
        return callbacks
    follower = Callbacks()
    follower.check_stop = callbacks.check_stop
    return follower


def handlers_for_rank(handlers: Sequence[Callbacks]) -> list[Callbacks]:
    """The handlers this rank runs: all of them on rank 0 (and in one process); on the others those
    marked ``every_rank`` (validation, the stop check): rank 0 records the run."""
    return list(handlers) if is_main() else [h for h in handlers if h.every_rank]


# -- the job on every rank -------------------------------------------------------------------


class _RunWritesDropped:
    """A catalog for ranks other than 0: reads pass through (datasets, masks, the stop request in the
    run's row), writes of the run (created, updated, epochs, heartbeat) are dropped: rank 0 makes them."""

    def __init__(self, catalog: Any):
        self._catalog = catalog

    def __getattr__(self, name: str) -> Any:
        return getattr(self._catalog, name)

    def create_run(self, *args: Any, **kwargs: Any) -> None:
        return None

    def update_run(self, *args: Any, **kwargs: Any) -> None:
        return None

    def add_epoch(self, *args: Any, **kwargs: Any) -> None:
        return None

    def heartbeat(self, *args: Any, **kwargs: Any) -> None:
        return None


class FollowerWorkspace(Workspace):
    """The workspace as a rank other than 0 sees it: the same datasets and catalog reads; run writes
    dropped and run folders in a private scratch folder (removed when the process exits).
    ``records_runs`` is false: rank 0 records the run (:meth:`~core.train.job.TrainingJob.start`)."""

    records_runs = False

    def __init__(self, root: str | Path):
        super().__init__(root)
        self.catalog = _RunWritesDropped(self.catalog)
        self.scratch = Path(tempfile.mkdtemp(prefix=f"segdash-rank{rank()}-"))
        atexit.register(shutil.rmtree, self.scratch, ignore_errors=True)

    def run_dir(self, run_id: str) -> Path:
        path = self.scratch / run_id
        path.mkdir(parents=True, exist_ok=True)
        return path
