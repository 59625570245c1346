"""The Train page's form for a new run: its widgets, filled in from the dataset's last run, and the
:class:`~core.train.config.TrainConfig` they make. UI only (the page's helper, not a page)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import streamlit as st

from core.nn.augment import AugmentConfig
from core.nn.losses import LOSS_LABELS, LOSSES
from core.nn.model import ARCHITECTURES, ENCODERS
from core.train.config import INT_LIMITS, NUMBER_LIMITS, TrainConfig
from pages._common import page_link
from pages._split import split_form

__all__ = ["Form", "load_form", "render_form"]

# widget key -> the config field it shows (the same name both ways: filled in from a run, read back)
_FIELDS = {
    "train_loss": "loss",
    "train_edge_weight": "edge_weight",
    "train_epochs": "epochs",
    "train_batch": "batch_size",
    "train_lr": "lr",
    "train_patch": "patch_size",
    "train_val": "val_fraction",
    "train_steps": "steps_per_epoch",
    "train_seed": "seed",
    "train_skip_empty": "skip_empty_patches",
    "train_amp": "amp",
    "train_minutes": "minutes",
}
_NO_AUGMENT = AugmentConfig(flips=False, rot90=False)
_PERSIST = "session"  # the form keeps its values when the user visits another page and comes back


@dataclass
class Form:
    """What the form says: ``config()`` builds the run's config (it may raise a user error);
    ``epochs`` and ``minutes`` also bound a resumed run."""

    config: Callable[[], TrainConfig]
    epochs: int
    minutes: float


def _form_values(config: dict, base: TrainConfig) -> dict:
    """Widget key -> value showing a run's settings (values a widget cannot show are left out)."""
    try:
        cfg = TrainConfig.from_dict(config, base=base)
    except (ValueError, TypeError):
        return {}
    m = cfg.model
    values = {key: getattr(cfg, name) for key, name in _FIELDS.items()}
    values.update(
        train_arch=m.arch if m.arch in ARCHITECTURES else None,
        train_width=int(m.classic_width),
        train_encoder=m.encoder if m.encoder in ENCODERS else None,
        train_pretrained=m.encoder_weights == "imagenet",
        train_augment=cfg.augment.enabled(),
    )
    if cfg.augment.enabled():
        values["augment_config"] = cfg.augment.to_dict()
    return {k: v for k, v in values.items() if v is not None}


def load_form(ws: Any, dataset: str, job: Any, base: TrainConfig) -> None:
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


def render_form(ws: Any, dataset: str, info: Any, base: TrainConfig) -> Form:
    """Draw the form for a new run of ``dataset`` (its info ``info``, recipe ``base``)."""
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
        format_func=LOSS_LABELS.get,
        persist_state=_PERSIST,
    )
    epochs = c4.number_input("Epochs", *INT_LIMITS["epochs"], base.epochs, key="train_epochs", persist_state=_PERSIST)
    c1, c2, c3, c4 = st.columns(4)
    c1.number_input("Batch size", *INT_LIMITS["batch_size"], base.batch_size, key="train_batch", persist_state=_PERSIST)
    c2.number_input(
        "Learning rate", *NUMBER_LIMITS["lr"], base.lr, format="%.5f", step=1e-4, key="train_lr", persist_state=_PERSIST
    )
    c3.number_input(
        "Patch size (px)",
        *INT_LIMITS["patch_size"],
        base.patch_size,
        step=16,
        key="train_patch",
        persist_state=_PERSIST,
        help="Side of the square training patches; a multiple of 32 (16 for the classic U-Net).",
    )
    val_fraction = c4.slider(
        "Validation split",
        *NUMBER_LIMITS["val_fraction"],
        base.val_fraction,
        0.05,
        key="train_val",
        persist_state=_PERSIST,
        help="Fraction of the labeled slices kept aside to score the model.",
    )
    split_overrides = split_form(info, labeled, base, float(val_fraction))
    with st.expander("More settings"):
        a1, a2, a3 = st.columns(3)
        a1.number_input(
            "Steps per epoch",
            *INT_LIMITS["steps_per_epoch"],
            base.steps_per_epoch,
            key="train_steps",
            persist_state=_PERSIST,
        )
        a2.number_input("Seed", *INT_LIMITS["seed"], base.seed, key="train_seed", persist_state=_PERSIST)
        a3.checkbox(
            "Skip patches without foreground", base.skip_empty_patches, key="train_skip_empty", persist_state=_PERSIST
        )
        a3.checkbox(
            "Mixed precision",
            base.amp,
            key="train_amp",
            persist_state=_PERSIST,
            help="bfloat16 on GPUs and on CPUs that have it natively (about twice as fast there), "
            "float16 on older GPUs; weights stay float32. Off: float32 everywhere.",
        )
        uses_bce = "bce" in loss.split("+")  # the border weight weighs the cross-entropy
        a2.number_input(
            "Border weight",
            *NUMBER_LIMITS["edge_weight"],
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
            *NUMBER_LIMITS["minutes"],
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

    shown = {name: st.session_state[key] for key, name in _FIELDS.items()}  # each widget's value, by its key
    if not uses_bce:
        shown["edge_weight"] = 0.0

    def _config() -> TrainConfig:
        model = {
            "arch": arch,
            "encoder": encoder,
            "encoder_weights": "imagenet" if pretrained else None,
            "classic_width": int(width),
        }  # n_classes: the dataset's, set when the request is checked
        augment = augment_cfg if use_augment else _NO_AUGMENT
        return TrainConfig.from_dict({"model": model, "augment": augment, **shown, **split_overrides}, base=base)

    return Form(_config, int(epochs), float(minutes))
