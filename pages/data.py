"""Data: import images (and masks), browse the slices, and manage a dataset.

UI only: reading, pairing and storing are :func:`core.workflow.ingest.import_dataset`; the workspace does
the rest. When the data layer needs a decision (which channel of a multi-channel image, where to
threshold anti-aliased masks, whether three planes are slices or colours, whether to remap gapped
class values, merge classes or import two-valued images, which series of a TIFF to take) the page
offers the choice and the user imports again. A refusal is shown as an error on the page, with its
reason. Paths on the server are limited to :func:`core.workflow.ingest.import_roots`.
"""

import time

import streamlit as st

from core.data.io import ChannelChoiceNeeded, SeriesChoiceNeeded, StackOrColourNeeded
from core.data.masks import GappedMaskValues, StrayMaskValues, ThresholdMergesClasses
from core.view.render import class_color, overlay
from core.workflow.ingest import ImagesLookLikeMasks, import_dataset, import_roots
from core.workflow.labeling import status_words
from pages._common import dataset_picker, flash, shown, user_errors, workspace
from pages._pixel_size import pixel_size_editor

ACCEPTED = ["tif", "tiff", "png", "jpg", "jpeg", "bmp", "zip"]
# questions the import can ask: session key of the pending question -> its default (no question)
_QUESTIONS = {
    "data_need_channel": None,
    "data_need_threshold": None,
    "data_need_planes": None,
    "data_need_series": None,
    "data_need_remap": None,
    "data_need_merge": None,
    "data_need_binary": None,
}
_STAGES = {"images": "Reading images", "masks": "Reading masks", "writing": "Writing slices"}
_ZARR_MODES = {"copy": "copied into the workspace", "reference": "read where it is (by reference, no copy)"}


def _init() -> None:
    defaults = {"data_select": None, "data_manage_for": None, "data_error": None, **_QUESTIONS}
    for key, value in defaults.items():
        if key not in st.session_state:
            st.session_state[key] = value


def _class_list(text: str) -> list[str] | None:
    names = [c.strip() for c in (text or "").split(",") if c.strip()]
    return names or None


def _progress_bar():
    """A progress bar and the ``progress(done, total, stage)`` callback that fills it with time left."""
    bar = st.progress(0.0, text="Starting the import ...")
    started: dict[str, float] = {}
    shown = [0.0]

    def update(done: int, total: int, stage: str) -> None:
        now = time.monotonic()
        t0 = started.setdefault(stage, now)
        if done < total and now - shown[0] < 0.2:
            return
        shown[0] = now
        unit = "slices" if stage == "writing" else "files"
        left = ""
        if 0 < done < total and now - t0 > 0.5:
            left = f", about {(now - t0) / done * (total - done):.0f} s left"
        bar.progress(
            min(1.0, done / max(total, 1)), text=f"{_STAGES.get(stage, stage)}: {done} of {total} {unit} done{left}"
        )

    return bar, update


def _answers() -> dict:
    """The options that answer the questions asked so far."""
    ss = st.session_state
    out = {}
    if ss.get("data_unlabeled") is not None:
        out["unlabeled_value"] = ss["data_unlabeled"]
    if ss["data_need_channel"]:
        out["channel"] = ss.get("data_channel")
    if ss["data_need_threshold"] is not None:
        out["mask_threshold"] = ss.get("data_threshold")
    if ss["data_need_planes"]:
        out["as_stack"] = ss.get("data_as_stack", "slices") == "slices"
    if ss["data_need_series"]:
        out["series"] = ss.get("data_series")
    if ss["data_need_remap"]:
        out["remap_classes"] = bool(ss.get("data_remap"))
    if ss["data_need_merge"]:
        out["merge_classes"] = bool(ss.get("data_merge"))
    if ss["data_need_binary"]:
        out["images_are_binary"] = bool(ss.get("data_binary_ok"))
    return out


def _ask(key: str, value, text: str) -> None:
    st.session_state[key] = value
    flash("warning", text)
    st.rerun()


def _run_import(ws) -> None:
    uploads = st.session_state.get("data_images") or []
    mask_uploads = st.session_state.get("data_masks") or []
    path = (st.session_state.get("data_path") or "").strip()
    mask_path = (st.session_state.get("data_mask_path") or "").strip()
    name = (st.session_state.get("data_name") or "").strip()
    st.session_state["data_error"] = None
    if uploads and path:
        st.session_state["data_error"] = "Give either uploaded files or a path on the server, not both."
        return
    images = uploads or path
    if not images:
        st.session_state["data_error"] = "Upload images or give a path on the server first."
        return
    masks = mask_uploads or mask_path or None
    roots = import_roots(ws) if (path or mask_path) else None
    by_reference = bool(path) and st.session_state.get("data_zarr_mode") == "reference"
    bar, progress = _progress_bar()
    try:
        report = import_dataset(
            ws,
            name,
            images,
            masks,
            roots=roots,
            progress=progress,
            by_reference=by_reference,
            class_names=_class_list(st.session_state.get("data_classes", "")),
            **_answers(),
        )
    except ChannelChoiceNeeded as exc:
        _ask(
            "data_need_channel",
            exc.n_channels,
            f"{str(exc).rstrip('.')}. Pick the channel below and press Import again.",
        )
    except StrayMaskValues as exc:
        _ask(
            "data_need_threshold",
            float(exc.suggested_threshold),
            f"{exc} Set the threshold below and press Import again.",
        )
    except StackOrColourNeeded as exc:
        _ask(
            "data_need_planes",
            [exc.stack_reading, exc.image_reading],
            f"{exc}. Pick a reading below and press Import again.",
        )
    except SeriesChoiceNeeded as exc:
        _ask("data_need_series", exc.series, f"{exc}. Pick the series below and press Import again.")
    except GappedMaskValues as exc:
        _ask("data_need_remap", exc.values, f"{exc}. Tick the remap below and press Import again.")
    except ThresholdMergesClasses as exc:
        _ask("data_need_merge", exc.values, f"{exc}. Tick the merge below and press Import again.")
    except ImagesLookLikeMasks as exc:
        _ask("data_need_binary", exc.values, f"{exc}: tick the box below and press Import again, or swap them.")
    except ValueError as exc:
        bar.empty()
        st.session_state["data_error"] = str(exc)
        return
    bar.progress(1.0, text=f"Imported {report.dataset.name}")
    counts = report.dataset.counts()
    flash(
        "success",
        f"Imported **{report.dataset.name}**: {counts['slices']} slices, "
        f"{counts['slices'] - counts['unlabeled']} with masks" + (" (see the notes below)." if report.notices else "."),
    )
    for key, value in _QUESTIONS.items():
        st.session_state[key] = value
    st.session_state["data_select"] = report.dataset.name
    st.session_state["data_imported"] = True
    st.rerun()


def _questions() -> None:
    """The inputs that answer what the last import asked."""
    ss = st.session_state
    n_channels = ss["data_need_channel"]
    if n_channels:
        st.number_input(
            f"Channel to import (the images have {n_channels}: 0..{n_channels - 1})",
            min_value=0,
            max_value=n_channels - 1,
            value=0,
            step=1,
            key="data_channel",
        )
    suggested = ss["data_need_threshold"]
    if suggested is not None:
        st.number_input("Mask threshold: mask values above it become class 1", value=suggested, key="data_threshold")
    planes = ss["data_need_planes"]  # [the stack reading, the image reading], as the import named them
    if planes:
        st.radio("Read the TIFF as", ["slices", "colour"], key="data_as_stack", horizontal=True,
                 format_func=lambda v: planes[0] if v == "slices" else planes[1])  # fmt: skip
    if ss["data_need_series"]:
        shown = ss["data_need_series"]
        st.selectbox("Series to import", range(len(shown)), key="data_series", format_func=lambda i: f"{i}: {shown[i]}")
    if ss["data_need_remap"]:
        values = ss["data_need_remap"]
        st.checkbox(
            f"Remap mask values {', '.join(map(str, values))} to classes 0..{len(values) - 1}", key="data_remap"
        )
    if ss["data_need_merge"]:
        st.checkbox(
            f"Merge the {len(ss['data_need_merge'])} mask classes into one foreground class (the threshold does this)",
            key="data_merge",
        )
    if ss["data_need_binary"]:
        st.checkbox("These two-valued files are the images (not masks): import them as images", key="data_binary_ok")


def _import_tab(ws) -> None:
    st.text_input(
        "Dataset name", key="data_name", placeholder="e.g. cells_2024", help="Letters, digits, '.', '_' or '-'."
    )
    st.text_input(
        "Class names, comma separated, background first (optional)", key="data_classes", placeholder="background, cell"
    )
    st.file_uploader(
        "Images: TIFF stacks, PNG/JPEG/BMP slices, or a ZIP (with images/ and masks/ folders, "
        "or a SegDash dataset export)",
        type=ACCEPTED,
        accept_multiple_files=True,
        key="data_images",
    )
    st.file_uploader(
        "Masks (optional): paired by file name, or slice by slice for a stack",
        type=ACCEPTED,
        accept_multiple_files=True,
        key="data_masks",
    )
    st.number_input(
        "Mask value that means 'not labeled' (optional)",
        min_value=0,
        max_value=65535,
        value=None,
        step=1,
        key="data_unlabeled",
        placeholder="none: the masks are complete",
        help="For sparse labels made elsewhere (strokes in napari, ilastik's label exports): mask pixels of "
        "this value are imported as not labeled, and training and scores leave them out. SegDash stores "
        "them as 255.",
    )
    with st.expander(
        "Or import from a path on the server (for stacks too big to upload)",
        expanded=bool(st.session_state.get("data_path")),
    ):
        st.text_input(
            "Images: a file, folder, ZIP, or Zarr / OME-Zarr / N5 folder on the server",
            key="data_path",
            placeholder="/data/stack.tif",
        )
        st.text_input("Masks (optional): a file, folder or ZIP on the server", key="data_mask_path")
        st.radio(
            "A Zarr / OME-Zarr / N5 volume is",
            ["copy", "reference"],
            key="data_zarr_mode",
            horizontal=True,
            format_func=lambda v: _ZARR_MODES[v],
            help="By reference the dataset reads the volume where it is (no copy, no extra disk), so it must "
            "stay there: moved or deleted, its images cannot be read (its masks are kept). A copy is an "
            "uncompressed TIFF in the workspace, the volume's full size.",
        )
        st.caption(
            "Paths inside these folders only: "
            + ", ".join(f"`{r}`" for r in import_roots(ws))
            + " (set `SEGDASH_IMPORT_ROOTS` when starting the server to change them)."
        )
    _questions()
    if st.button("Import", key="data_import", type="primary", icon=":material/upload:"):
        _run_import(ws)
    if st.session_state["data_error"]:
        st.error(f"Import refused: {shown(st.session_state['data_error'])}", icon=":material/error:")


def _browse_tab(ws, dataset: str) -> None:
    info = ws.dataset(dataset)
    n = info.shape[0]
    st.caption(
        f"{n} slices of {info.shape[1]} x {info.shape[2]} pixels, {info.dtype}"
        + (f"; read in place from `{shown(str(info.volume))}` (by reference)" if info.volume else "")
        + (f"; from {shown(str(info.source))}" if info.source and not info.volume else "")
    )
    for notice in info.notices:
        st.info(notice)
    if st.session_state.get("data_z", 0) > n - 1:
        st.session_state["data_z"] = 0
    left, right = st.columns([3, 2])
    with left:
        z = st.slider("Slice", 0, n - 1, key="data_z") if n > 1 else 0
        alpha = st.slider("Mask opacity", 0.0, 1.0, 0.4, 0.05, key="data_alpha")
        mask = ws.read_mask(dataset, z)
        status = info.statuses[z]
        st.image(
            overlay(ws.read_slice(dataset, z), mask, alpha),
            caption=f"{info.slice_names[z]} (slice {z}): {status_words(status, info.coverage[z], info.labeled[z])}",
            width="stretch",
        )
        legend = " ".join(
            f"<span style='color:rgb{class_color(k)}'>&#9632;</span> {name}"
            for k, name in enumerate(info.class_names)
            if k > 0
        )
        st.markdown(f"Classes: {legend}", unsafe_allow_html=True)
        if st.button("Label this slice", key="data_to_label", icon=":material/brush:"):
            st.session_state["slice"] = z
            st.switch_page("pages/label.py")
    with right:
        st.dataframe(
            [
                {"z": s.z, "name": s.name, "status": s.status, "labels": s.coverage, "version": s.version}
                for s in ws.slices(dataset)
            ],
            hide_index=True,
            height="auto" if n <= 12 else 460,
            key="data_table",
        )


def _manage_tab(ws, dataset: str) -> None:
    info = ws.dataset(dataset)
    if st.session_state["data_manage_for"] != dataset:  # fresh inputs when the dataset changes
        st.session_state["data_edit_classes"] = ", ".join(info.class_names)
        st.session_state["data_new_name"] = dataset
        st.session_state["data_confirm_rename"] = False
        st.session_state["data_confirm_delete"] = False
        st.session_state["data_manage_for"] = dataset

    st.markdown("**Class names**")
    st.text_input(f"{info.n_classes} names, comma separated, in class order", key="data_edit_classes")
    if st.button("Save class names", key="data_save_classes"):
        with user_errors():
            ws.set_class_names(dataset, _class_list(st.session_state["data_edit_classes"]) or [])
            st.session_state["data_manage_for"] = None
            flash("success", "Class names saved.")
            st.rerun()

    pixel_size_editor(ws, dataset)

    st.markdown("**Rename**")
    st.text_input("New name", key="data_new_name")
    st.checkbox(f"Yes, rename {dataset}", key="data_confirm_rename")
    if st.button("Rename", key="data_rename", disabled=not st.session_state["data_confirm_rename"]):
        new = st.session_state["data_new_name"].strip()
        with user_errors():
            ws.rename_dataset(dataset, new)
            st.session_state["data_select"] = new
            flash("success", f"Renamed {dataset} to **{new}**.")
            st.rerun()

    st.markdown("**Delete**")
    what = ws.deletion_summary(dataset)
    st.caption(f"{what[0].upper()}{what[1:]}. Headless: `python -m core delete --dataset {dataset} --yes`.")
    st.checkbox(f"Yes, delete {dataset}", key="data_confirm_delete")
    if st.button(
        "Delete dataset",
        key="data_delete",
        type="primary",
        icon=":material/delete:",
        disabled=not st.session_state["data_confirm_delete"],
    ):
        with user_errors():
            ws.delete_dataset(dataset)
            st.session_state["data_select"] = ""
            flash("success", f"Deleted {dataset}.")
            st.rerun()


_init()
ws = workspace()
if st.session_state["data_select"] is not None:  # an import, rename or delete picks the dataset to show
    st.session_state["dataset"] = st.session_state["data_select"]
    st.session_state["data_select"] = None
if st.session_state.pop("data_imported", False):  # show the new dataset, and an empty form for the next
    st.session_state["data_tab"] = "Browse"
    for key in ("data_name", "data_classes", "data_path", "data_mask_path"):
        st.session_state[key] = ""
dataset = dataset_picker(ws)

st.title("Data")

browse, imp, manage = st.tabs(
    ["Browse", "Import", "Manage"], key="data_tab", on_change="rerun"
)  # stateful: can be switched
with imp:
    _import_tab(ws)
for tab, show, empty in (
    (browse, _browse_tab, "No dataset yet: import one in the Import tab."),
    (manage, _manage_tab, "No dataset to manage."),
):
    with tab:
        if dataset:
            with user_errors():
                show(ws, dataset)
        else:
            st.info(empty)
