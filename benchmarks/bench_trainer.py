"""Trainer overhead: ``TrainingJob`` against a bare hand-written smp loop doing the same work.

Both arms train the recipe's network (:func:`core.train.config.default_config`, or ``--set``
overrides) for the same number of steps (``--epochs`` x the recipe's ``steps_per_epoch``), batch and
patch size, on the same patches (same positions, drawn with the trainer's seeded sampler) with the
same augmentation (:func:`core.nn.augment.augment_batch`, same generator seeds), the same loss
(smp BCE + Dice), AdamW and per-step cosine learning rate, on the ISBI 2012 sample (30 labeled
slices, a temporary workspace).

- **bare**: read the slices, percentile window, build the network, then per step: slice and
  normalise the patches (numpy), augment, forward, loss, backward, step. Nothing else.
- **job**: :class:`core.train.job.TrainingJob` started through the registry, with everything it
  does: catalog records, the training/validation split, a DataLoader, stop checks and progress
  snapshots per step, validation on the validation slices and ``last.pt`` / ``best.pt``
  checkpoints (with optimizer state) after every epoch, and ``bundle.zip`` at the end.

Each arm is timed from the call to the end (wall clock), so the job's validation, checkpointing
and bundle are counted as its cost; images/s = patches trained / wall seconds. The arms alternate
(bare, job, then job, bare, ...) for ``--rounds`` rounds in one process after a short warm-up;
the reported ratio is median(job images/s) / median(bare images/s); the per-round ratios are listed
too. Target: ratio >= 0.97. A third arm runs the bare loop in a background thread, as the job
runs: on a 2-core VM that alone measured 5-10% slower than the main thread, so job / bare-in-a-
thread is what the job's own work costs.

    python benchmarks/bench_trainer.py [--rounds 3] [--epochs 2] [--set '{...}']
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
from dataclasses import replace

import numpy as np
from _common import arm_args, report

TARGET_RATIO = 0.97
DATASET = "isbi2012"


def bare_loop(ws, dataset: str, cfg, device_name: str = "cpu", channels_last: bool = True) -> dict:
    """Train ``cfg.epochs * cfg.steps_per_epoch`` steps by hand; returns ``{patches, seconds}``.

    Same numeric settings as the trainer: channels-last, and with ``cfg.amp`` the forward under
    the autocast dtype the trainer picks (:func:`core.nn.device.amp_dtype_for`: bf16 on CUDA and on
    CPUs with native bf16, fp16 + GradScaler on older GPUs).
    """
    import math

    import segmentation_models_pytorch as smp
    import torch

    from core.data.intensity import normalize, percentile_range
    from core.nn.augment import augment_batch
    from core.nn.device import amp_dtype_for, select_device
    from core.nn.model import build_model
    from core.train.data import patch_coords, split_slices  # same sampler

    t0 = time.perf_counter()
    device = select_device(device_name)
    cuda = device.type == "cuda"
    labeled = ws.labeled_slices(dataset)
    train_zs, _ = split_slices(labeled, cfg.val_fraction, cfg.seed)
    stack = ws.read_images(dataset)
    window = percentile_range(stack)
    images = [np.array(stack[z]) for z in train_zs]
    _, masks_arr = ws.read_masks(dataset, train_zs)
    masks = list(masks_arr)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if cuda:
        torch.backends.cudnn.benchmark = True
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    amp_dtype = amp_dtype_for(device, cfg.amp)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    bce, dice = smp.losses.SoftBCEWithLogitsLoss(), smp.losses.DiceLoss("binary", from_logits=True)
    total = cfg.epochs * cfg.steps_per_epoch
    p, bs, step, n = cfg.patch_size, cfg.batch_size, 0, 0
    model.train()
    for epoch in range(1, cfg.epochs + 1):
        coords = patch_coords(
            masks, p, cfg.steps_per_epoch * bs, np.random.default_rng([cfg.seed, epoch]), cfg.skip_empty_patches
        )
        gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        for i in range(0, len(coords), bs):
            rows = coords[i : i + bs]
            x = torch.from_numpy(np.stack([normalize(images[s][y : y + p, x : x + p], window) for s, y, x in rows]))
            t = torch.from_numpy(np.stack([masks[s][y : y + p, x : x + p] for s, y, x in rows]).astype(np.int64))
            x, t = augment_batch(x[:, None].to(device), t.to(device), cfg.augment, generator=gen)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            lr_min = cfg.lr * 0.01
            for g in opt.param_groups:
                g["lr"] = lr_min + 0.5 * (cfg.lr - lr_min) * (1 + math.cos(math.pi * min(1.0, step / total)))
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                logits = model(x)
            logits = logits.float()
            target = t[:, None].float()
            loss = bce(logits, target) + dice(logits, target)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            step += 1
            n += x.shape[0]
    if cuda:
        torch.cuda.synchronize()
    return {"patches": n, "seconds": time.perf_counter() - t0}


def job_run(ws, dataset: str, cfg) -> dict:
    """Train ``cfg`` through the registry and a :class:`TrainingJob`; returns ``{patches, seconds, ...}``."""
    from core.train.job import TrainingJob
    from core.train.registry import registry

    t0 = time.perf_counter()
    job = registry().start(TrainingJob(ws, dataset, cfg))
    job.join()
    seconds = time.perf_counter() - t0
    snap = job.snapshot()
    if snap["state"] != "done":
        raise SystemExit(f"training job ended {snap['state']}: {snap['error']}")
    hist = snap["history"]
    shutil.rmtree(ws.run_dir(snap["run_id"]), ignore_errors=True)  # ~0.5 GB of checkpoints per run
    return {
        "patches": snap["epoch"] * cfg.steps_per_epoch * cfg.batch_size,
        "seconds": seconds,
        "steps_only_images_per_s": float(np.mean([h["images_per_s"] for h in hist])),
        "val_and_save_s": float(
            sum(h["time_s"] for h in hist) - sum(cfg.steps_per_epoch * cfg.batch_size / h["images_per_s"] for h in hist)
        ),
        "device": snap["device"],
    }


def in_thread(fn):
    """``fn`` run in a fresh background thread (as :class:`TrainingJob` runs), waited for."""
    import threading

    def run(cfg) -> dict:
        out: dict = {}
        t = threading.Thread(target=lambda: out.update(fn(cfg)), daemon=True)
        t.start()
        t.join()
        return out

    return run


def alternate(ws, cfg, rounds: int, bare, job, log, bare_thread=None) -> dict:
    """Warm up, then run the arms alternately (order reversed every round); medians and ratios.

    ``bare_thread``, when given, is the bare loop run in a background thread: it separates what
    the thread itself costs from what the job does on top."""
    arms = {"bare": bare, "job": job, **({"bare_thread": bare_thread} if bare_thread else {})}
    warm = replace(cfg, epochs=1, steps_per_epoch=3)  # lazy initialisation of kernels (training and
    for fn in arms.values():  # validation shapes), imports, first files
        fn(warm)
    res: dict[str, list[dict]] = {arm: [] for arm in arms}
    names = ["bare", *(["bare_thread"] if bare_thread else []), "job"]
    for r in range(rounds):
        for arm in names if r % 2 == 0 else names[::-1]:
            out = arms[arm](cfg)
            out["images_per_s"] = out["patches"] / out["seconds"]
            res[arm].append(out)
            log(f"round {r + 1} {arm:11s}: {out['images_per_s']:.3f} images/s ({out['seconds']:.1f} s)")
    med = {arm: statistics.median(o["images_per_s"] for o in res[arm]) for arm in res}
    paired = [j["images_per_s"] / b["images_per_s"] for b, j in zip(res["bare"], res["job"])]
    return {"runs": res, "median": med, "ratio": med["job"] / med["bare"], "paired_ratios": paired}


def result_rows(out: dict, steps: int, labels: dict[str, str]) -> list[dict]:
    """Table rows of :func:`alternate`'s result: one per arm (``labels``: arm -> row name, in
    order), then the job / bare ratio with its target."""
    rows = [
        {
            "arm": label,
            "images_per_s": out["median"][arm],
            "steps": steps,
            "runs_images_per_s": [round(o["images_per_s"], 3) for o in out["runs"][arm]],
        }
        for arm, label in labels.items()
    ]
    rows.append(
        {
            "arm": "ratio job / bare",
            "images_per_s": out["ratio"],
            "steps": steps,
            "runs_images_per_s": [round(r, 3) for r in out["paired_ratios"]],
            "target": f">= {TARGET_RATIO}",
            "met": out["ratio"] >= TARGET_RATIO,
            "gap": max(0.0, TARGET_RATIO - out["ratio"]),
        }
    )
    return rows


def main() -> None:
    args = arm_args(__doc__, epochs=2)
    import os
    import sys

    import torch

    from core.store.workspace import Workspace
    from core.train.config import TrainConfig, default_config
    from core.workflow.sample import ensure_sample

    cfg = TrainConfig.from_dict(
        {**json.loads(args.set), "epochs": args.epochs, "device": "cpu"}, base=default_config(2)
    )
    tmp = tempfile.mkdtemp(prefix="segdash-bench-trainer-")
    try:
        ws = Workspace(tmp)
        ensure_sample(ws)
        load = os.getloadavg()
        out = alternate(
            ws,
            cfg,
            args.rounds,
            lambda c: bare_loop(ws, DATASET, c),
            lambda c: job_run(ws, DATASET, c),
            lambda m: print(m, file=sys.stderr, flush=True),
            bare_thread=in_thread(lambda c: bare_loop(ws, DATASET, c)),
        )
        load_after = os.getloadavg()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    steps = cfg.epochs * cfg.steps_per_epoch
    jobs = out["runs"]["job"]
    rows = result_rows(
        out,
        steps,
        {
            "bare": "bare smp loop",
            "job": "TrainingJob (val + checkpoints + bundle)",
            "bare_thread": "bare smp loop in a background thread",
        },
    )
    rows.append(
        {
            "arm": "ratio job / bare in a thread",
            "images_per_s": out["median"]["job"] / out["median"]["bare_thread"],
            "steps": steps,
        }
    )
    report(
        "trainer",
        rows,
        {
            "recipe": cfg.to_dict(),
            "rounds": args.rounds,
            "device": jobs[0]["device"],
            "torch_threads": torch.get_num_threads(),
            "load_avg_before": load,
            "load_avg_after": load_after,
            "job_steps_only_images_per_s": [o["steps_only_images_per_s"] for o in jobs],
            "job_validation_and_checkpoint_s_per_run": [o["val_and_save_s"] for o in jobs],
            "what": "same network, patches, augmentation, loss, optimizer, schedule; wall time from call to "
            "end; the job's validation, checkpoints and bundle count as its cost",
        },
    )


if __name__ == "__main__":
    main()
