"""Augment: choose the augmentations training applies, and see them on a labeled slice.

UI only: the transforms are :mod:`core.nn.augment` (:func:`~core.nn.augment.preview` runs the same code
as training). The chosen settings are kept in ``st.session_state["augment_config"]`` (a dict of
:class:`~core.nn.augment.AugmentConfig`), which the Train page uses for the jobs it starts.
"""

from __future__ import annotations

from dataclasses import fields

import streamlit as st

from core.data.intensity import normalize, percentile_range
from core.nn.augment import AugmentConfig, preview
from core.view.render import overlay
from pages._common import dataset_picker, user_errors, workspace

# -- widgets: field -> (label, kind, min, max, step, help) ------------------------------------
_GEOMETRY = {
    "flips": ("Flips (left-right, up-down)", "check", None, None, None, "Mirror the patch; exact, no blur."),
    "rot90": ("90-degree rotations", "check", None, None, None, "Rotate by 90, 180 or 270 degrees; exact."),
    "rotate_deg": ("Free rotation (± degrees)", "slider", 0.0, 180.0, 5.0, "Any angle up to this; 0 = off."),
    "zoom": (
        "Zoom in (up to, fraction)",
        "slider",
        0.0,
        0.9,
        0.05,
        "Random crop of at least 1 - zoom of the side, resized back; 0 = off.",
    ),
    "elastic": (
        "Elastic deformation",
        "slider",
        0.0,
        1.0,
        0.05,
        "Smooth random warping as in the U-Net paper; 1 = displacements of 3% of the patch side; 0 = off.",
    ),
}
_INTENSITY = {
    "brightness": ("Brightness (±)", "slider", 0.0, 1.0, 0.05, "Random shift of the [0, 1] intensities; 0 = off."),
    "contrast": ("Contrast (±)", "slider", 0.0, 1.0, 0.05, "Random contrast factor in [1 - c, 1 + c]; 0 = off."),
    "gamma": ("Gamma", "slider", 0.0, 1.0, 0.05, "Random gamma in [1/(1+g), 1+g]; 0 = off."),
    "noise_std": ("Gaussian noise (std)", "slider", 0.0, 1.0, 0.01, "Noise on the [0, 1] image; 0 = off."),
}
_ALWAYS = {
    "p": (
        "Probability of each transform",
        "slider",
        0.0,
        1.0,
        0.05,
        "Each enabled transform is applied to a training patch with this probability.",
    ),
}
_WIDGETS = {**_GEOMETRY, **_INTENSITY, **_ALWAYS}
assert set(_WIDGETS) == {f.name for f in fields(AugmentConfig)}, "a field of AugmentConfig has no widget"


def _key(name: str) -> str:
    return f"aug_{name}"


# -- session state: this page's keys (app.py sets the shared ones: _common.frame) ----------------
if "augment_config" not in st.session_state:
    st.session_state["augment_config"] = AugmentConfig().to_dict()
if "augment_seed" not in st.session_state:
    st.session_state["augment_seed"] = 0
for _name, _value in AugmentConfig.from_dict(st.session_state["augment_config"]).to_dict().items():
    if _key(_name) not in st.session_state:  # widgets forget their value on another page: restore it
        st.session_state[_key(_name)] = _value


def _redraw() -> None:
    st.session_state["augment_seed"] += 1


def _reset() -> None:
    for name, value in AugmentConfig().to_dict().items():
        st.session_state[_key(name)] = value


@st.cache_data(show_spinner=False, max_entries=32)
def _window(root: str, dataset: str) -> tuple[float, float]:
    """The dataset's 1-99 percentile window, as training measures it (root: cache key)."""
    del root
    return percentile_range(workspace().read_images(dataset))


def _widget(where, name: str) -> None:
    label, kind, lo, hi, step, help_ = _WIDGETS[name]
    if kind == "check":
        where.checkbox(label, key=_key(name), help=help_)
    else:
        where.slider(label, lo, hi, step=step, key=_key(name), help=help_)


st.title("Augment")
st.caption(
    "Random changes to training patches, so the network learns from more than the few slices you "
    "labeled. **These settings are what training uses**: the Train page starts its jobs with them."
)
ws = workspace()
dataset = dataset_picker(ws)
if dataset is None:
    st.stop()

settings, grid = st.columns([1, 3], gap="large")
with settings:
    st.markdown("**Geometry** (image and mask alike)")
    for name in _GEOMETRY:
        _widget(st, name)
    st.markdown("**Intensity** (image only)")
    for name in _INTENSITY:
        _widget(st, name)
    for name in _ALWAYS:
        _widget(st, name)
    st.button(
        "Reset to the recipe",
        key="aug_reset",
        on_click=_reset,
        help="Flips and 90-degree rotations, each with probability 0.5: the default of training.",
    )

cfg = None
with user_errors():
    cfg = AugmentConfig.from_dict({name: st.session_state[_key(name)] for name in _WIDGETS})
    st.session_state["augment_config"] = cfg.to_dict()

with grid:
    labeled = ws.labeled_slices(dataset)
    info = ws.dataset(dataset)
    if not labeled:
        st.info(f"{dataset} has no labeled slice yet: label one on the Label page to preview augmentations.")
        st.stop()
    c1, c2, c3 = st.columns([3, 2, 1], vertical_alignment="bottom")
    if st.session_state.get("aug_slice") not in labeled:
        st.session_state.pop("aug_slice", None)
    z = c1.selectbox("Labeled slice", labeled, key="aug_slice", format_func=lambda i: f"{info.slice_names[i]} (z={i})")
    n = c2.select_slider("Examples", [3, 7, 11, 15], value=7, key="aug_n")
    c3.button(
        "Re-draw",
        key="aug_redraw",
        on_click=_redraw,
        icon=":material/casino:",
        type="primary",
        help="Draw new random augmentations with the same settings.",
    )
    tint = st.toggle(
        "Show the mask tint",
        True,
        key="aug_tint",
        help="Off: the plain augmented images, to judge contrast, gamma and noise without the "
        "colour of the mask over them.",
    )
    if cfg is not None:
        if not cfg.enabled():
            st.warning("No augmentation is enabled (or its probability is 0): training sees the patches as they are.")
        window = _window(str(ws.root), dataset)
        image = normalize(ws.read_slice(dataset, z), window)
        mask = ws.read_mask(dataset, z)
        pairs = preview(image, mask, cfg, n=n, seed=st.session_state["augment_seed"])
        cols = st.columns(4)
        cols[0].image(overlay(image, mask if tint else None, window=(0.0, 1.0)), caption="original", width="stretch")
        for i, (img, m) in enumerate(pairs, start=1):
            cols[i % 4].image(
                overlay(img, m if tint else None, window=(0.0, 1.0)), caption=f"example {i}", width="stretch"
            )
        shown = "the image with its mask tinted" if tint else "the image alone (mask tint off)"
        st.caption(
            f"Draw {st.session_state['augment_seed']}: {shown}; the same draw gives "
            "the same examples. Training applies these transforms to each patch, anew every epoch."
        )
