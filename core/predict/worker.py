"""A dataset prediction in a worker process: what :class:`~core.predict.dataset.PredictionJob` runs
when the computation leaves the server's process (:func:`~core.nn.device.use_worker_process`).

In the server's process the prediction thread shares the interpreter lock with every page being
rendered; in a process of its own it does not (see :mod:`core.train.process`, where training does
the same). The protocol is lines on the worker's standard output, read by the job's thread:
``ready null`` once it handles ``SIGUSR1`` (cancel), ``progress [done, total, eta_s]`` after each
slice, then one of ``result {...}`` (a
:class:`~core.predict.config.PredictionResult` as JSON), ``refused "message"`` (a
:class:`~core.errors.SegDashError`: the user's to fix) or ``error "message"``. The spec comes on
standard input as JSON. ``SIGUSR1`` cancels: the slices done are kept, as with the thread.

    python -m core.predict.worker < spec.json
"""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import asdict
from typing import Any

from ..errors import SegDashError
from .config import PredictConfig
from .protocol import result_of, spec_of

__all__ = ["spec_of", "result_of", "main"]


def _say(kind: str, payload: Any) -> None:
    print(kind, json.dumps(payload, default=str), flush=True)


def main() -> int:
    from ..nn.device import on_stop_signal, server_gone, share_cpu_for_background

    cancel = threading.Event()
    on_stop_signal(cancel.set)  # first: from the "ready" line on, the job may signal
    _say("ready", None)
    spec = json.loads(sys.stdin.read())
    if spec.get("cancelled"):  # cancelled before the worker started
        cancel.set()

    from ..store.workspace import Workspace
    from .dataset import predict_dataset

    share_cpu_for_background()
    parent = spec.get("parent")

    def watch() -> None:  # the server that started it ended: cancel (the slices done are kept)
        while not cancel.wait(0.5):
            if server_gone(parent):
                cancel.set()

    threading.Thread(target=watch, daemon=True).start()
    try:
        result = predict_dataset(
            Workspace(spec["workspace"]),
            spec["dataset"],
            spec["checkpoint"],
            PredictConfig(**spec["cfg"]),
            run_id=spec.get("run_id"),
            progress=lambda done, total, eta: _say("progress", [done, total, eta]),
            cancel=cancel,
        )
    except SegDashError as exc:
        _say("refused", str(exc))
    except Exception as exc:  # noqa: BLE001 - the job shows it as failed
        _say("error", f"{type(exc).__name__}: {exc}")
    else:
        _say("result", asdict(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
