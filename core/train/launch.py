"""Starting a checked request's job in this process: :func:`start_job`, the same call in one process
and on every rank of ``torchrun`` (where rank 0 checks the request and sends it to the others)."""

from __future__ import annotations

from typing import Callable

from ..errors import SegDashError
from ..store.workspace import Workspace
from .distributed import FollowerWorkspace, active, barrier, broadcast_object, init, is_main, local_batch
from .job import TrainingJob
from .registry import registry
from .request import TrainingRequest

__all__ = ["start_job"]


def start_job(workspace: Workspace, build: Callable[[], TrainingRequest]) -> TrainingJob:
    """Check a request with ``build()`` (:func:`~core.train.request.check_request`) and start its
    :class:`~core.train.job.TrainingJob` through the registry.

    Under torchrun (:func:`~core.train.distributed.init` is called here, before ``build``) rank 0
    checks the request and sends it, as JSON, to the other ranks, which run the same request on a
    :class:`~core.train.distributed.FollowerWorkspace`; a refusal (rank 0's, or a batch size the
    ranks do not divide) comes from every rank before anything is recorded.
    """
    if init() is None or not active():
        return registry().start(TrainingJob.from_request(build(), workspace))
    text, error = None, None
    if is_main():
        try:
            text = build().to_json()
        except SegDashError as exc:
            error = str(exc)
    error, text = broadcast_object((error, text))
    if error is not None:
        raise SegDashError(error)
    request = TrainingRequest.from_json(text)
    job = TrainingJob.from_request(request, workspace if is_main() else FollowerWorkspace(workspace.root))
    local_batch(request.config.batch_size)
    barrier()  # every rank built its job before rank 0 records the run
    return registry().start(job)
