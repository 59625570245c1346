"""GPU: ``TrainingJob`` images/s against the bare loop, both with AMP and channels-last, on CUDA.

The same comparison as ``bench_trainer.py`` (same network, patches, augmentation, loss, optimizer,
schedule; wall clock from call to end; the job's validation, checkpoints and bundle counted), on
the first CUDA device: the job uses AMP (bf16 where supported, else fp16 with a GradScaler) and
channels-last tensors on CUDA by itself; the bare loop is given the same settings. Without a CUDA
device it prints one row saying it was skipped, writes that to ``results/gpu.json`` and exits 0.

    python benchmarks/bench_gpu.py [--rounds 3] [--epochs 3] [--set '{"batch_size": 16}']
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile

from _common import arm_args, report


def main() -> None:
    args = arm_args(__doc__, epochs=3)
    import torch

    if not torch.cuda.is_available():
        report(
            "gpu",
            [{"arm": "skipped", "reason": "no CUDA device (torch.cuda.is_available() is False)"}],
            {"skipped": True},
        )
        return

    from bench_trainer import DATASET, alternate, bare_loop, job_run, result_rows

    from core.train.config import TrainConfig, default_config
    from core.workflow.sample import ensure_sample

    cfg = TrainConfig.from_dict(
        {**json.loads(args.set), "epochs": args.epochs, "device": "cuda", "amp": True}, base=default_config(2)
    )
    tmp = tempfile.mkdtemp(prefix="segdash-bench-gpu-")
    try:
        from core.store.workspace import Workspace

        ws = Workspace(tmp)
        ensure_sample(ws)
        out = alternate(
            ws,
            cfg,
            args.rounds,
            lambda c: bare_loop(ws, DATASET, c, device_name="cuda"),
            lambda c: job_run(ws, DATASET, c),
            lambda m: print(m, file=sys.stderr, flush=True),
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    steps = cfg.epochs * cfg.steps_per_epoch
    amp = "bf16" if torch.cuda.is_bf16_supported() else "fp16 + GradScaler"
    rows = result_rows(
        out, steps, {"bare": f"bare smp loop ({amp}, channels-last)", "job": "TrainingJob (val + checkpoints + bundle)"}
    )
    report(
        "gpu",
        rows,
        {
            "skipped": False,
            "device": torch.cuda.get_device_name(0),
            "amp": amp,
            "channels_last": True,
            "recipe": cfg.to_dict(),
            "rounds": args.rounds,
            "cpu_count": os.cpu_count(),
            "job_steps_only_images_per_s": [o["steps_only_images_per_s"] for o in out["runs"]["job"]],
        },
    )


if __name__ == "__main__":
    main()
