"""Measure: the objects of the saved masks or of a stored prediction, their measurements, and how far
the prediction's numbers can be trusted on the slices its model never trained on.

UI only: objects and measurements come from :mod:`core.workflow.measure`. Measuring a stack takes
seconds, so nothing is measured until the user presses *Measure*; the result is kept in the session
for the table, the plots and the downloads until the next one.
"""

import plotly.express as px
import streamlit as st

from core.workflow.guide import prediction_ids
from core.workflow.measure import Source, downloads, measure, object_view, trust
from core.workflow.runs import run_labels
from pages._common import dataset_picker, user_errors, workspace

SOURCES = ("Saved masks", "A stored prediction", "Both: prediction and saved masks")
MODES = {"2D: objects per slice (8-connected)": "2d", "3D: objects through the stack (26-connected)": "3d"}
KEY = "measure_result"

st.title("Measure")
ws = workspace()
dataset = dataset_picker(ws)
if dataset is None:
    st.stop()
st.session_state.setdefault(KEY, None)

# -- what to measure ---------------------------------------------------------------------------------
runs = prediction_ids(ws, dataset)
left, mid, right = st.columns([2, 2, 1])
source = left.radio("Source", SOURCES if runs else SOURCES[:1], key="measure_source")
labels = run_labels(ws)  # the run that made it: short name, state, epochs, score, full id
run = (
    mid.selectbox("Prediction", runs, key="measure_run", format_func=lambda r: labels.get(r, r))
    if source != SOURCES[0]
    else None
)
mode = MODES[mid.radio("Objects", list(MODES), key="measure_mode")]
split = right.checkbox(
    "Split touching objects",
    key="measure_split",
    help="A watershed on the distance transform (on the model's probability for a binary prediction) "
    "separates touching round objects (nuclei, organelles).",
)
min_distance = right.number_input(
    "Seeds at least (px) apart",
    1,
    200,
    5,
    key="measure_min_distance",
    disabled=not split,
    help="About the radius of the smallest object to keep whole.",
)
if not runs:
    st.caption("No stored prediction of this dataset yet (Predictions page): measuring its saved masks.")

if st.button("Measure", key="measure_go", type="primary", icon=":material/straighten:"):
    settings = {"mode": mode, "split": split, "min_distance": int(min_distance)}
    done = None
    with user_errors(), st.spinner("Finding and measuring objects..."):
        results = {}
        if source != SOURCES[1]:
            results["Saved masks"] = measure(ws, dataset, Source("masks"), **settings)
        if source != SOURCES[0]:
            results[f"Prediction {run}"] = measure(ws, dataset, Source("prediction", run), **settings)
        done = {"dataset": dataset, "results": results, "trust": trust(ws, dataset, run, **settings) if run else None}
    st.session_state[KEY] = done

done = st.session_state[KEY]
if not done or done["dataset"] != dataset:
    st.info("Choose the source and press Measure.")
    st.stop()

# -- the numbers and how far to trust them -------------------------------------------------------------
t = done["trust"]
if t is not None:
    if t.rows:
        st.success(t.sentence, icon=":material/verified:")
        with st.expander(f"Trust figures on {len(t.zs)} held-out {t.part} slices"):
            st.dataframe(t.rows, hide_index=True, key="measure_trust_table")
    for note in t.notes:
        st.caption(note)

name = st.radio("Table", list(done["results"]), horizontal=True, key="measure_table_of")
result = done["results"][name]
for note in result.notes:
    st.caption(note)
cols = st.columns(max(1, len(result.dataset)))
for col, (_, row) in zip(cols, result.dataset.iterrows()):
    col.metric(f"{row['class_name']} objects", int(row["count"]), help=f"{int(row['border'])} touch the border")
    col.caption(f"area fraction {row['area_fraction']:.3f}; {row['density_per_mpx']:.1f} per million pixels")

# -- the table -------------------------------------------------------------------------------------------
objects = result.objects
f1, f2 = st.columns([3, 1])
classes = sorted(objects["class_name"].unique().tolist()) if len(objects) else []
keep = f1.multiselect("Classes", classes, default=classes, key="measure_classes")
inner = f2.checkbox("Hide objects cut by the border", key="measure_inner")
shown = objects[objects["class_name"].isin(keep)] if len(objects) else objects
if inner and len(shown):
    shown = shown[~shown["border"]]
event = st.dataframe(
    shown, hide_index=True, on_select="rerun", selection_mode="single-row", key="measure_table", height=320
)
picked = [
    i for i in (event.selection.rows if event is not None and hasattr(event, "selection") else []) if i < len(shown)
]

# -- plots ----------------------------------------------------------------------------------------------
numeric = [c for c in shown.columns if c not in ("object", "class", "label", "z") and shown[c].dtype.kind in "fi"]
if len(shown) and numeric:
    size = "volume" if result.mode == "3d" else "area"
    p1, p2 = st.columns(2)
    with p1:
        what = st.selectbox("Distribution of", numeric, index=numeric.index(size), key="measure_hist")
        kind = st.radio("as", ["histogram", "violin"], horizontal=True, key="measure_hist_kind")
        if kind == "histogram":
            fig = px.histogram(shown, x=what, color="class_name", barmode="overlay", nbins=40)
        else:
            fig = px.violin(shown, y=what, x="class_name", box=True, points=False)
        st.plotly_chart(fig, key="measure_hist_chart")
    with p2:
        sx = st.selectbox("Scatter x", numeric, index=numeric.index(size), key="measure_sx")
        sy = st.selectbox("Scatter y", numeric, index=min(1, len(numeric) - 1), key="measure_sy")
        fig = px.scatter(shown, x=sx, y=sy, color="class_name", hover_data=["object", "z"])
        st.plotly_chart(fig, key="measure_scatter")

# -- the selected object ---------------------------------------------------------------------------------
if picked:
    obj = int(shown.iloc[picked[0]]["object"])
    with user_errors():
        crop, z = object_view(ws, dataset, result, obj)
        a, b = st.columns([2, 1])
        a.image(crop, caption=f"object {obj} on slice {z}", width="stretch")
        b.write(f"Slice {z} ({ws.dataset(dataset).slice_names[z]})")
        if b.button("Open this slice on the Label page", key="measure_to_label", icon=":material/brush:"):
            st.session_state["slice"] = z
            st.session_state.setdefault("label_slice_of", {})[dataset] = z  # the Label page's memory of it too
            st.switch_page("pages/label.py")

# -- downloads ------------------------------------------------------------------------------------------
stem = f"{dataset}_{'masks' if name == 'Saved masks' else name.split()[-1]}_{result.mode}"
files = done.setdefault("files", {}).get(name)
if files is None:
    if st.button(
        "Prepare downloads: CSV, Excel, label TIFF, OME-Zarr labels",
        key="measure_prepare",
        icon=":material/download:",
        help="The label image as an ImageJ TIFF (Fiji) and as OME-Zarr labels beside the raw image "
        "(napari, Fiji's MoBIE; a ZIP of the .ome.zarr folder): the same objects as the table's label column.",
    ):
        with user_errors(), st.spinner("Writing the files..."):
            done["files"][name] = downloads(result, stem, ws, dataset)
            st.rerun()
else:
    for col, (label, (data, file_name, mime)) in zip(st.columns(len(files)), files.items()):
        col.download_button(
            f"{label} ({len(data) / 1e6:.1f} MB)",
            data,
            file_name=file_name,
            mime=mime,
            key=f"measure_dl_{label}",
            icon=":material/download:",
            on_click="ignore",
        )
