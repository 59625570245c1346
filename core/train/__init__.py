"""Training layer: a background job that trains a network on a dataset's labeled slices.

One request path (whoever starts the run: the Train page, ``python -m core train``, torchrun,
"Train on my strokes"): :mod:`~core.train.request` (:class:`~core.train.request.TrainingRequest`,
typed and JSON-serialisable, checked once by :func:`~core.train.request.check_request`) ->
:mod:`~core.train.job` (:class:`~core.train.job.TrainingJob`, the thread, heartbeat and outcome;
:mod:`~core.train.process` runs it in a worker process that receives the request; :mod:`~core.train.launch`
on every torchrun rank) -> :mod:`~core.train.prepare` (:func:`~core.train.prepare.prepare_run`: split,
window, tensors) -> :mod:`~core.train.loop` (``fit()``, a short loop with no threads and no catalog)
with its handlers (:mod:`~core.train.handlers`: validation, checkpoints, catalog rows, progress/ETA,
over the hooks of :mod:`~core.train.events` and the run of :mod:`~core.train.recorder`) ->
:mod:`~core.train.finish` (decision tuned, test slices scored) and :mod:`~core.train.bundle`.

Beside it: :mod:`~core.train.config` (:class:`~core.train.config.TrainConfig`, the recipe, its field
limits), :mod:`~core.train.data` (split, patches, validation tensors), :mod:`~core.train.sparse`,
:mod:`~core.train.eta`, :mod:`~core.train.budget`, :mod:`~core.train.snapshot` (the typed progress
record, also read from the catalog for a run of another process), :mod:`~core.train.failures` (a
failure in the user's words), :mod:`~core.train.registry` (one running job per workspace; every
process's active runs), :mod:`~core.train.headless` and :mod:`~core.train.distributed` (the hooks of
``fit`` under torchrun, DDP). No import loop (``tests/core/test_package.py``). May import:
:mod:`core.data`, :mod:`core.store`, :mod:`core.nn`; not prediction, workflow, view or streamlit.

The same code path serves the dashboard and the command line: a
:class:`~core.train.job.TrainingJob` runs in a daemon thread and fills a snapshot that the page
polls; :func:`~core.train.headless.train_headless` starts one, waits for it and returns a summary.
The worker never touches the UI, catches every error into the ``failed`` state, and stops within
one optimisation step.

Recipe (:func:`~core.train.config.default_config`): the classic U-Net (Ronneberger et al. 2015) at width 16, 256x256
patches, batch 4, 20 epochs of 100 steps, BCE + Dice loss with the cross-entropy of pixels within
2 px of another class weighed 5x (``edge_weight`` 4), flips and 90-degree rotations, AdamW
(lr 2e-3, weight decay 1e-4) with a per-step cosine decay to 1% of lr, mixed precision. About 12
minutes on a 2-core CPU with native bf16 (twice that without) for the ISBI 2012 sample.
Chosen by ``benchmarks/bench_accuracy.py`` (held-out ISBI slices 24-29): it matched or beat an
smp ``Unet``/``resnet18`` given the same or more wall time, and takes 0.3 s a step against 0.5 s.
The edge weight raised the held-out EPFL mitochondria IoU from 0.814 to 0.838 at 20 minutes and
lowered the ISBI pixel error from 0.0766 to 0.0754 (issue 13, ``benchmarks/README.md``).

Data:

- Slices are split into training and validation at slice level (:func:`~core.train.data.split_slices`).
- Images are normalised with the dataset's 1-99 percentile window (:mod:`core.data.intensity`),
  measured once and stored in the checkpoint (a resumed run keeps its checkpoint's window).
- Each epoch draws ``steps_per_epoch * batch_size`` random patches from the training slices
  (slice chosen in proportion to its area; slices smaller than the patch are reflect-padded);
  with ``skip_empty_patches`` a patch without foreground is redrawn (up to 20 times).
- Augmentation (:mod:`core.nn.augment`) runs on the training device, per sample.
- Validation runs on whole validation slices, centre-cropped to at most ``val_crop`` pixels a side
  (512 by default, so it stays fast on a CPU; 0 = no crop), padded by reflection to the model's
  multiple and cropped back. Scores are summed over all validation pixels.

Metrics: the headline ``val_dice`` is the mean Dice over classes (for binary data: mean of
background and foreground); per-class lists (``val_dice_per_class``) and, for binary data,
``val_dice_fg`` (Dice of class 1) are recorded too. ``best.pt`` is the epoch with the best
``val_dice``; ``last.pt`` the latest state.

Resume: ``resume_from`` (a run id or a checkpoint path) starts a **new run** (new run id, its
catalog record has ``extra.resumed_from``) from that checkpoint's weights, optimizer state, epoch
count and history; ``epochs`` is the final epoch number, so resuming a stopped 30-epoch run with
the same config trains the remaining epochs. The model config, normalisation window and
validation slices are taken from the checkpoint. A stop in the middle of an epoch saves the
weights reached in ``last.pt`` with the epoch count of the last *completed* epoch; resuming starts
that epoch over.

Reproducibility: the same seed gives the same losses and scores on a CPU (patch positions and
augmentations come from seeded generators; the network is initialised from ``torch.manual_seed``,
so this holds when one job runs at a time in the process). At the end (done, stopped or failed
after an epoch) ``bundle.zip`` is written to the run folder (:func:`~core.train.bundle.write_bundle`).
"""
