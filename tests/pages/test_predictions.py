"""Predictions page: predict with a tiny untrained checkpoint, then review: error map, scores, queue, accept."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.checkpoint import save_checkpoint
from core.inference import prediction_jobs
from core.model import ModelConfig, build_model


@pytest.fixture
def tiny_run(ws_env, make_dataset):
    """A 4-slice dataset (slices 0 and 1 labeled) and a run whose best checkpoint is an untrained tiny U-Net."""
    make_dataset("tiny", z=4, shape=(32, 48), labeled=(0, 1))
    cfg = ModelConfig(arch="classic", classic_width=4)
    path = save_checkpoint(ws_env.run_dir("run-tiny") / "best.pt", build_model(cfg), cfg,
                           class_names=["background", "cell"], norm_window=(0.0, 255.0), patch_size=32, epoch=1,
                           metrics={}, run_id="run-tiny")
    ws_env.catalog.create_run("run-tiny", "tiny", {"model": cfg.to_dict()}, state="done")
    ws_env.catalog.update_run("run-tiny", best_checkpoint=str(path), best_dice=0.5, device="cpu")
    return "run-tiny"


def _wait_prediction(ws, dataset: str = "tiny") -> None:
    """The page predicts in a background job: wait for it (not a blind sleep)."""
    job = prediction_jobs(ws, dataset)
    assert job is not None and job.join(60), "the prediction job did not finish"


def _predicted(page, ws) -> AppTest:
    at = AppTest.from_file(page("predictions.py"), default_timeout=60).run()
    assert at.selectbox(key="pred_run").value == "run-tiny"
    at.button(key="pred_predict").click().run()
    assert not at.exception, at.exception
    _wait_prediction(ws)
    at.run()  # the page after the job (in the browser its progress fragment triggers this rerun)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def _queue(at: AppTest):
    """The correction queue (its key changes with the order and the slice shown)."""
    found = [d for d in at.dataframe if (d.proto.id and "pred_queue" in d.proto.id) or "pred_queue" in str(d.key)]
    assert len(found) == 1, [d.key for d in at.dataframe]
    return found[0]


def _panel_titles(at: AppTest) -> list[str]:
    import json

    fig = json.loads(at.get_by_key("pred_views").proto.spec)
    return [a["text"] for a in fig["layout"]["annotations"]]


def test_page_opens_on_the_sample_without_a_model(ws_env, page):
    at = AppTest.from_file(page("predictions.py"), default_timeout=60).run()
    assert not at.exception
    assert at.session_state["dataset"] == "isbi2012"
    assert any("No trained model yet" in i.value for i in at.info)
    assert at.file_uploader(key="pred_upload") and at.button(key="pred_import")


def test_predict_shows_error_map_scores_queue_and_confusion(tiny_run, ws_env, page):
    at = _predicted(page, ws_env)
    assert any("Predicted 4 slices" in s.value for s in at.success)
    assert at.selectbox(key="pred_shown").value == tiny_run
    captions = _panel_titles(at)  # one figure: the pictures zoom and pan together
    assert {"Image", "Mask (ground truth)", "Prediction", "Error map", "Uncertainty (bright = unsure)"} <= set(captions)
    wrong = [m for m in at.metric if m.label == "Wrong pixels"]
    assert wrong and wrong[0].value.endswith("%")
    legend = " ".join(m.value for m in at.markdown)
    assert "false positive" in legend and "false negative" in legend and "rgb(255, 0, 255)" in legend
    tabs = {t.label: t for t in at.tabs}
    scores = tabs["Per-slice scores"].dataframe[0].value
    assert sorted(scores["z"]) == [0, 1]  # only the labeled slices are scored
    assert list(scores["dice"]) == sorted(scores["dice"])  # worst first
    queue = _queue(at).value
    assert sorted(queue["z"]) == [0, 1, 2, 3]
    assert set(queue["status"].iloc[:2]) == {"unlabeled"}  # "label this next" first
    assert at.get_by_key("pred_confusion")
    assert at.slider(key="pred_threshold").value == 0.5
    assert at.button(key="pred_accept") and at.button(key="pred_to_label")


def test_threshold_relabels_and_accept_saves_the_mask(tiny_run, ws_env, page):
    at = _predicted(page, ws_env)
    at.slider(key="pred_slice").set_value(2).run()
    at.slider(key="pred_threshold").set_value(0.0).run()  # foreground wherever P(cell) > 0: everything
    assert not at.exception
    at.button(key="pred_accept").click().run()
    assert not at.exception
    mask = ws_env.read_mask("tiny", 2)
    assert mask is not None and mask.all()
    assert ws_env.dataset("tiny").statuses[2] == "from-prediction"


def test_uploaded_stack_is_imported_and_selected(tiny_run, ws_env, page):
    import io

    import numpy as np
    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(buf, np.zeros((2, 32, 48), np.uint8))
    at = AppTest.from_file(page("predictions.py"), default_timeout=60).run()
    at.file_uploader(key="pred_upload").upload("new.tif", buf.getvalue(), "image/tiff")
    at.text_input(key="pred_upload_name").set_value("new-stack")
    at.button(key="pred_import").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.session_state["dataset"] == "new-stack"
    assert ws_env.dataset("new-stack").shape == (2, 32, 48)
    assert any("Imported new-stack" in s.value for s in at.success)
