"""Train: configure and start a training job, watch it live, compare and download runs.

UI only: training is :class:`core.train.job.TrainingJob`, run by a worker process
(:func:`core.train.process.start_training`; it never calls ``st.*``) and kept in
:func:`core.train.registry.registry` as a :class:`core.train.process.ProcessJob`. A fragment shows every
active run of the workspace (:func:`core.train.registry.live_runs`: this server's jobs from their
snapshots, those of ``python -m core train`` or another server from the catalog, with who trains
them) and the runs table, every 2 seconds while a run is active (every 10 to notice a new one), and
stops any of them (:func:`core.train.registry.stop_run`). The job survives a page refresh: it is
found again through the registry (one running job per workspace) or the run id kept in session state.
"""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from core.nn.augment import AugmentConfig
from core.nn.model import ARCHITECTURES, ENCODERS
from core.train.bundle import write_bundle
from core.train.config import LOSSES, TrainConfig, default_config, model_label
from core.train.headless import job_progress
from core.train.job import TrainingJob
from core.train.process import ProcessJob, start_training
from core.train.registry import live_runs, registry, run_snapshot, stop_run
from core.train.snapshot import TrainingSnapshot, held_out_ious, origin_label
from core.view import plots
from pages._common import dataset_picker, page_link, user_errors, workspace
from pages._split import finish_report, split_form

_ACTIVE = ("queued", "running", "stopping")
_LOSS_LABELS = {
    "bce+dice": "BCE + Dice (recommended)",
    "bce": "cross-entropy (BCE)",
    "dice": "Dice",
    "jaccard": "Jaccard (IoU)",
    "focal": "focal",
}
_NO_AUGMENT = AugmentConfig(flips=False, rot90=False)
_PERSIST = "session"  # the form keeps its values when the user visits another page and comes back

# -- session state: this page's keys (app.py sets the shared ones: _common.frame) ----------------
for _key, _value in {"train_run_id": None, "train_message": None}.items():
    if _key not in st.session_state:
        st.session_state[_key] = _value


def _time_left(seconds: float | None) -> str:
    """``about 3 min 05 s left``, or what to say before the job has timed recent steps."""
    if seconds is None:
        return "estimating the time left"
    s = int(round(seconds))
    return (
        "about "
        + (f"{s // 3600} h {s % 3600 // 60:02d} min" if s >= 3600 else f"{s // 60} min {s % 60:02d} s")
        + " left"
    )


def _current_job(ws) -> TrainingJob | ProcessJob | None:
    """The workspace's running job, else the one this session started, else the last one of this server."""
    job = registry().active(ws.root)
    if job is None and st.session_state["train_run_id"]:
        job = registry().get(st.session_state["train_run_id"])
    if job is None:
        mine = [j for j in registry().jobs() if Path(j.workspace.root).resolve() == Path(ws.root).resolve()]
        job = mine[-1] if mine else None
    if job is not None:
        st.session_state["train_run_id"] = job.run_id
    return job


def _form_values(config: dict, base: TrainConfig) -> dict:
    """Widget key -> value showing a run's settings (values a widget cannot show are left out)."""
    try:
        cfg = TrainConfig.from_dict(config, base=base)
    except (ValueError, TypeError):
        return {}
    m = cfg.model
    values = {
        "train_arch": m.arch if m.arch in ARCHITECTURES else None,
        "train_width": int(m.classic_width),
        "train_encoder": m.encoder if m.encoder in ENCODERS else None,
        "train_pretrained": m.encoder_weights == "imagenet",
        "train_loss": cfg.loss if cfg.loss in LOSSES else None,
        "train_edge_weight": float(cfg.edge_weight),
        "train_epochs": int(cfg.epochs),
        "train_batch": int(cfg.batch_size),
        "train_lr": float(cfg.lr),
        "train_patch": int(cfg.patch_size),
        "train_val": float(cfg.val_fraction),
        "train_steps": int(cfg.steps_per_epoch),
        "train_seed": int(cfg.seed),
        "train_skip_empty": bool(cfg.skip_empty_patches),
        "train_amp": bool(cfg.amp),
        "train_minutes": float(cfg.minutes),
        "train_augment": cfg.augment.enabled(),
    }
    if cfg.augment.enabled():
        values["augment_config"] = cfg.augment.to_dict()
    return {k: v for k, v in values.items() if v is not None}


def _load_form(ws, dataset: str, job: TrainingJob | ProcessJob | None, base: TrainConfig) -> None:
    """Once per session and dataset (a reload is a new session): fill the form with the settings of
    the run the page is attached to, else of the dataset's last run, instead of the recipe's defaults.

    On the session's first dataset, settings the user already made elsewhere in the session (the
    Augment page's) are kept; picking another dataset shows that dataset's last run's settings.
    """
    if st.session_state.get("train_form_for") == dataset:
        return
    first = "train_form_for" not in st.session_state
    st.session_state["train_form_for"] = dataset
    st.session_state["train_form_from"] = None
    run = ws.run(job.run_id) if job is not None and job.dataset == dataset else None
    if run is None:
        runs = ws.runs(dataset)
        run = runs[0] if runs else None
    if run is None:
        return
    for key, value in _form_values(run["config"], base).items():
        if not (first and key in st.session_state):
            st.session_state[key] = value
    st.session_state["train_form_from"] = run["run_id"]


def _progress(snap: dict) -> tuple[float, str]:
    spe, epochs = max(1, int(snap["steps_per_epoch"])), int(snap["epochs"])
    done, total = job_progress(snap)
    frac = done / total
    current = min(int(snap["epoch"]) + 1, epochs)
    text = (
        f"Epoch {current}/{epochs} · step {snap['step']}/{spe} · {_time_left(snap['eta_s'])}"
        if snap["state"] in _ACTIVE
        else f"{snap['state']} after {snap['epoch']} of {epochs} epochs"
    )
    if snap["state"] == "stopping":
        text = (
            f"Stopping ... (epoch {current}/{epochs}, step {snap['step']}/{spe}): finishing the current step "
            "and saving last.pt"
        )
    return frac, text


st.title("Train")
st.caption(
    "Train a U-Net on the labeled slices of the dataset. Training runs in the background: you can "
    "leave this page (or reload it) and come back; the job keeps going."
)
ws = workspace()
dataset = dataset_picker(ws)
if dataset is None:
    st.stop()
info = ws.dataset(dataset)
base = default_config(info.n_classes)
job = _current_job(ws)
_load_form(ws, dataset, job, base)

# -- configuration ------------------------------------------------------------------------------
st.subheader("Configuration")
if st.session_state.get("train_form_from"):
    st.caption(
        f"Filled in with the settings of run `{st.session_state['train_form_from']}`, this dataset's last "
        "run; change them for the next run."
    )
labeled = ws.labeled_slices(dataset)
st.markdown(
    f"**{dataset}**: {len(labeled)} labeled of {info.shape[0]} slices, {info.shape[1]}×{info.shape[2]} px · "
    f"classes (from the dataset): " + ", ".join(f"`{c}`" for c in info.class_names)
)
c1, c2, c3, c4 = st.columns(4)
arch = c1.selectbox(
    "Architecture",
    ARCHITECTURES,
    index=ARCHITECTURES.index(base.model.arch),
    key="train_arch",
    format_func=lambda a: "classic U-Net (2015)" if a == "classic" else a,
    help="smp architectures with a pretrained-able encoder, or the original U-Net.",
    persist_state=_PERSIST,
)
classic = arch == "classic"
if classic:
    width = c2.number_input(
        "U-Net width",
        2,
        256,
        base.model.classic_width,
        step=2,
        key="train_width",
        persist_state=_PERSIST,
        help="Filters of the first level: 64 as in the paper; 16 trains about 16x faster on a CPU.",
    )
    encoder, pretrained = base.model.encoder, False
else:
    encoder = c2.selectbox(
        "Encoder", ENCODERS, index=ENCODERS.index(base.model.encoder), key="train_encoder", persist_state=_PERSIST
    )
    pretrained = c2.checkbox(
        "ImageNet weights",
        key="train_pretrained",
        persist_state=_PERSIST,
        help="Start from an encoder pretrained on ImageNet (downloaded once; needs internet).",
    )
    width = base.model.classic_width
loss = c3.selectbox(
    "Loss",
    LOSSES,
    index=LOSSES.index(base.loss),
    key="train_loss",
    format_func=_LOSS_LABELS.get,
    persist_state=_PERSIST,
)
epochs = c4.number_input("Epochs", 1, 10_000, base.epochs, key="train_epochs", persist_state=_PERSIST)
c1, c2, c3, c4 = st.columns(4)
batch = c1.number_input("Batch size", 1, 512, base.batch_size, key="train_batch", persist_state=_PERSIST)
lr = c2.number_input(
    "Learning rate", 1e-6, 1.0, base.lr, format="%.5f", step=1e-4, key="train_lr", persist_state=_PERSIST
)
patch = c3.number_input(
    "Patch size (px)",
    16,
    4096,
    base.patch_size,
    step=16,
    key="train_patch",
    persist_state=_PERSIST,
    help="Side of the square training patches; a multiple of 32 (16 for the classic U-Net).",
)
val_fraction = c4.slider(
    "Validation split",
    0.0,
    0.5,
    base.val_fraction,
    0.05,
    key="train_val",
    persist_state=_PERSIST,
    help="Fraction of the labeled slices kept aside to score the model.",
)
split_overrides = split_form(info, labeled, base, float(val_fraction))
with st.expander("More settings"):
    a1, a2, a3 = st.columns(3)
    steps = a1.number_input(
        "Steps per epoch", 1, 100_000, base.steps_per_epoch, key="train_steps", persist_state=_PERSIST
    )
    seed = a2.number_input("Seed", 0, 2**31 - 1, base.seed, key="train_seed", persist_state=_PERSIST)
    skip_empty = a3.checkbox(
        "Skip patches without foreground", base.skip_empty_patches, key="train_skip_empty", persist_state=_PERSIST
    )
    amp = a3.checkbox(
        "Mixed precision",
        base.amp,
        key="train_amp",
        persist_state=_PERSIST,
        help="bfloat16 on GPUs and on CPUs that have it natively (about twice as fast there), "
        "float16 on older GPUs; weights stay float32. Off: float32 everywhere.",
    )
    uses_bce = "bce" in loss.split("+")  # the border weight weighs the cross-entropy
    edge_weight = a2.number_input(
        "Border weight",
        0.0,
        100.0,
        float(base.edge_weight),
        step=1.0,
        key="train_edge_weight",
        persist_state=_PERSIST,
        disabled=not uses_bce,
        help="Pixels within 2 px of another class count 1 + this much in the cross-entropy, so thin "
        "membranes and small objects weigh more (on EPFL mitochondria 4 raised the test IoU from 0.814 "
        "to 0.838). 0: every pixel alike. Needs a loss with BCE.",
    )
    minutes = a1.number_input(
        "Time budget (min)",
        0.0,
        100_000.0,
        float(base.minutes),
        step=5.0,
        key="train_minutes",
        persist_state=_PERSIST,
        help="0: train for the Epochs above. Above 0: train for about this many minutes; the epochs are "
        "planned from their measured time, so the learning-rate schedule ends with the time.",
    )
augment_cfg = AugmentConfig.from_dict(st.session_state.get("augment_config") or base.augment.to_dict())
use_augment = st.toggle(
    "Augment training patches",
    True,
    key="train_augment",
    persist_state=_PERSIST,
    help="Uses the settings chosen on the Augment page.",
)
st.caption(
    f"Augmentation, from the **Augment page**: {augment_cfg.describe()}"
    + ("" if use_augment else " — **switched off** for this run.")
)
page_link("pages/augment.py", "Change the augmentations", ":material/auto_awesome:")


def _config() -> TrainConfig:
    return TrainConfig.from_dict(
        {
            "model": {
                "arch": arch,
                "encoder": encoder,
                "encoder_weights": "imagenet" if pretrained else None,
                "classic_width": int(width),
                "n_classes": info.n_classes,
            },
            "augment": augment_cfg if use_augment else _NO_AUGMENT,
            "loss": loss,
            "edge_weight": float(edge_weight) if uses_bce else 0.0,
            "epochs": int(epochs),
            "batch_size": int(batch),
            "lr": float(lr),
            "patch_size": int(patch),
            "val_fraction": float(val_fraction),
            "steps_per_epoch": int(steps),
            "seed": int(seed),
            "skip_empty_patches": bool(skip_empty),
            "amp": bool(amp),
            "minutes": float(minutes),
            **split_overrides,
        },
        base=base,
    )


# -- start ------------------------------------------------------------------------------------
if st.button("Start training", key="train_start", type="primary", icon=":material/play_arrow:"):
    with user_errors():
        new = start_training(ws, dataset, _config())
        st.session_state["train_run_id"] = new.run_id


def _stop(run_id: str) -> None:
    """Stop callback: runs before the page, so this very run already shows "Stopping ..." (a run of
    another process is asked through the catalog and says so within seconds)."""
    with user_errors():
        stop_run(ws, run_id)


def _focus(live: list[TrainingSnapshot]) -> TrainingSnapshot | None:
    """The run the page follows: this server's active job, else the newest active run of any
    process (the CLI, another server); once none is active, the last one it followed (its outcome),
    else the last job of this server."""
    current = _current_job(ws)
    if current is not None and current.is_active():
        snap = current.snapshot()
    elif live:
        snap = live[0]
    elif st.session_state.get("train_followed"):
        snap = run_snapshot(ws, st.session_state["train_followed"])
    else:
        snap = current.snapshot() if current is not None else None
    if snap is not None and snap.state in _ACTIVE:
        st.session_state["train_followed"] = snap.run_id
    return snap


def _run_block(snap: TrainingSnapshot, stop_key: str) -> None:
    """One run's live view: who trains it, progress and ETA, Stop, its outcome, its curves."""
    frac, text = _progress(snap)
    st.markdown(
        f"**Run `{snap['run_id']}`** on **{snap['dataset']}** · device: **{snap['device'] or '...'}**"
        f" · trained by **{snap['origin'] or 'this server'}**"
        + (f" · resumed from `{snap['resumed_from']}`" if snap.get("resumed_from") else "")
    )
    p1, p2 = st.columns([6, 1], vertical_alignment="bottom")
    p1.progress(frac, text=text)
    p2.button(
        "Stop",
        key=stop_key,
        icon=":material/stop:",
        disabled=snap["state"] not in ("queued", "running"),
        on_click=_stop,
        args=(snap["run_id"],),
        help="Stops within one step (a run of another process within seconds) and keeps the weights "
        "reached (last.pt); resume it below.",
    )
    if snap["state"] == "stopping":
        st.info(
            "Stopping ...: the job ends after the current step and keeps the weights reached (last.pt).",
            icon=":material/hourglass_top:",
        )


# -- live progress: every active run of the workspace, whichever process trains it ---------------
_shown = tuple(s.run_id for s in live_runs(ws))


@st.fragment(run_every=2 if _shown else 10)
def _live() -> None:
    live = live_runs(ws)
    if tuple(s.run_id for s in live) != _shown:
        st.rerun()  # a run started or ended: redraw the page once (resume and download lists)
    snap = _focus(live)
    if snap is None:
        st.button("Stop", key="train_stop", icon=":material/stop:", disabled=True)
        st.info(
            "No training is running in this workspace: set the configuration above and press Start. "
            "Earlier runs are listed below."
        )
    else:
        _run_block(snap, "train_stop")
        if snap["state"] == "failed":
            st.error(f"Training failed: {snap['error']}")
        elif snap["state"] == "stopped":
            st.warning(f"Stopped after epoch {snap['epoch']}; resume it below to continue.")
        elif snap["state"] == "done":
            best = snap["best_dice"]
            st.success(f"Done: best validation Dice {best:.3f}." if best is not None else "Done.")
        for note in snap.get("notes", []):
            st.caption(note)
        if snap.get("train_slices"):
            finish_report(snap)
        if snap["history"]:
            st.plotly_chart(plots.training_curves(snap["history"]), key="train_live_chart")
        elif snap["state"] in _ACTIVE:
            st.caption("The loss and Dice curves appear here after the first epoch.")
    others = [s for s in live if snap is None or s.run_id != snap.run_id]
    if others:
        st.markdown("**Also training in this workspace**")
        for other in others:
            _run_block(other, f"train_stop_{other.run_id}")

    st.subheader("Runs")
    runs = ws.runs(dataset)
    if not runs:
        st.info(f"No run on {dataset} yet.")
        return
    n_epochs = ws.epochs_done([r.run_id for r in runs])
    held_out = {r.run_id: held_out_ious(r) for r in runs}
    rows = [
        {
            "run id": r.run_id,
            "state": r.state,
            "best Dice (class mean)": None if r.best_dice is None else round(r.best_dice, 4),
            **{
                f"{word} IoU": None if held_out[r.run_id][part] is None else round(held_out[r.run_id][part], 4)
                for part, word in (("val", "validation"), ("test", "test"))
            },
            "epochs": f"{n_epochs[r.run_id]}/{r.config.get('epochs', '?')}",
            "model": model_label(r.config),
            "device": r.device,
            "trained by": origin_label(r),
            "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created)),
            "error": r.error,
        }
        for r in runs
    ]
    if not any(r["error"] for r in rows):
        for r in rows:
            del r["error"]
    st.dataframe(rows, hide_index=True, width="stretch")


_live()

# -- past runs: compare, resume, download ---------------------------------------------------------
runs = ws.runs(dataset)
if not runs:
    st.stop()
n_epochs = ws.epochs_done([r.run_id for r in runs])
resumed_ids = {r["extra"].get("resumed_from") for r in runs}
interrupted = [r for r in runs if r["state"] == "interrupted" and r["run_id"] not in resumed_ids]
if interrupted:
    gone = interrupted[0]
    st.warning(
        f"Run `{gone['run_id']}` was interrupted: the process training it ended (a server restart or a crash) "
        f"after {n_epochs[gone['run_id']]} epochs. "
        + (
            "Its checkpoints are kept: resume it below from the last one."
            if gone["last_checkpoint"] and Path(gone["last_checkpoint"]).is_file()
            else "It had saved no checkpoint yet: start it again above."
        ),
        icon=":material/warning:",
    )


def _follow_newest(widget: str, newest: str) -> None:
    """When a newer run appears, drop the widget's old choice so it defaults to the newest run again."""
    seen = f"_{widget}_newest"
    if st.session_state.get(seen) != newest:
        st.session_state[seen] = newest
        st.session_state.pop(widget, None)


with_epochs = [r["run_id"] for r in runs if n_epochs[r["run_id"]]]  # newest first
if with_epochs:
    _follow_newest("train_compare", with_epochs[0])
    chosen = st.multiselect("Compare runs", with_epochs, default=with_epochs[:2], key="train_compare")
    if chosen:
        st.plotly_chart(
            plots.compare_runs(
                {rid: ws.run_epochs(rid) for rid in chosen}, metrics=("train_loss", "val_loss", "val_dice")
            ),
            key="train_compare_chart",
        )

r1, r2 = st.columns(2)
with r1:
    st.markdown("**Resume** a stopped, interrupted or finished run")
    resumable = [
        r["run_id"]
        for r in runs
        if r["state"] not in _ACTIVE and r["last_checkpoint"] and Path(r["last_checkpoint"]).is_file()
    ]
    if resumable:
        first = next((i for i, r in enumerate(resumable) if r in {x["run_id"] for x in interrupted}), 0)
        rid = st.selectbox("Run to resume", resumable, index=first, key="train_resume_run")
        until = (
            f"for about {minutes:g} min (the time budget above)"
            if minutes
            else f"up to epoch {int(epochs)} (the Epochs setting above)"
        )
        st.caption(
            f"Continues from its last checkpoint {until}, "
            "as a new run with that run's own settings, model and validation slices."
        )
        if st.button("Resume", key="train_resume", icon=":material/resume:"):
            with user_errors():
                own = TrainConfig.from_dict(ws.run(rid).config, base=base)
                resumed = TrainConfig.from_dict({"epochs": int(epochs), "minutes": float(minutes)}, base=own)
                new = start_training(ws, dataset, resumed, resume_from=rid)
                st.session_state["train_run_id"] = new.run_id
                st.rerun()
    else:
        st.caption("No run with a checkpoint to resume yet.")
with r2:
    st.markdown("**Download** a run")
    downloadable = [r for r in runs if r["best_checkpoint"] and Path(r["best_checkpoint"]).is_file()]
    if downloadable:
        by_id = {r["run_id"]: r for r in downloadable}  # newest first: the default
        _follow_newest("train_dl_run", downloadable[0]["run_id"])
        rid = st.selectbox("Run to download", list(by_id), key="train_dl_run")
        files = (
            (
                "Best checkpoint",
                lambda: Path(by_id[rid]["best_checkpoint"]).read_bytes(),
                "best.pt",
                "application/octet-stream",
                "best",
                ":material/download:",
                "The weights of the epoch with the best validation Dice (SegDash checkpoint).",
            ),
            (
                "Reproducibility bundle",
                lambda: write_bundle(ws, rid).read_bytes(),
                "bundle.zip",
                "application/zip",
                "bundle",
                ":material/folder_zip:",
                "ZIP with the config, per-epoch metrics, slice split, package versions and the best weights.",
            ),
        )
        for col, (label, data, suffix, mime, key, icon, tip) in zip(st.columns(2), files):
            col.download_button(
                label,
                data,
                file_name=f"{rid}-{suffix}",
                mime=mime,
                key=f"train_dl_{key}",
                icon=icon,
                on_click="ignore",
                help=tip,
            )
        with st.expander("Model package for Fiji (deepImageJ), ilastik, napari: bioimage.io"):
            from pages._model_export import model_export_section

            with user_errors():
                model_export_section(ws, rid)
    else:
        st.caption("No run with a best checkpoint yet.")
