"""Train page: configuration widgets, a tiny real training job, refusal of a second start, stop, resume."""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from core.nn.augment import AugmentConfig
from core.train.config import default_config
from core.train.registry import registry

TIMEOUT_S = 90


pytestmark = pytest.mark.usefixtures("no_job_left_running")


def _wait(run_id: str) -> dict:
    """Poll the registry until the job has finished (not a blind sleep)."""
    job = registry().get(run_id)
    assert job is not None, f"{run_id} is not in the registry"
    deadline = time.monotonic() + TIMEOUT_S
    while job.is_active() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not job.is_active(), f"{run_id} still running after {TIMEOUT_S} s"
    return job.snapshot()


def _stepping(run_id: str) -> None:
    """Wait until the run has taken a step (its worker process starts first: a stop before that
    stops a run with no weights to keep or resume)."""
    job = registry().get(run_id)
    deadline = time.monotonic() + TIMEOUT_S
    while job.is_active() and not (job.snapshot().step or job.snapshot().epoch) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert job.snapshot().step or job.snapshot().epoch, f"{run_id} took no step in {TIMEOUT_S} s"


def _tiny(at: AppTest, epochs: int = 1, steps: int = 2) -> AppTest:
    """Set the form to a tiny classic U-Net that trains in about a second."""
    at.selectbox(key="train_arch").set_value("classic").run()
    at.number_input(key="train_width").set_value(4)
    at.number_input(key="train_epochs").set_value(epochs)
    at.number_input(key="train_batch").set_value(2)
    at.number_input(key="train_patch").set_value(32)
    at.number_input(key="train_steps").set_value(steps)
    return at.run()


def test_form_defaults_come_from_the_recipe_on_the_sample(ws_env, page):
    at = AppTest.from_file(page("train.py"), default_timeout=60).run()
    assert not at.exception
    base = default_config(2)
    assert at.selectbox(key="train_arch").value == base.model.arch == "classic"
    assert at.number_input(key="train_width").value == base.model.classic_width
    assert not [s for s in at.selectbox if s.key == "train_encoder"]  # the classic U-Net has none
    assert at.selectbox(key="train_loss").value == base.loss
    assert at.number_input(key="train_epochs").value == base.epochs
    assert at.number_input(key="train_batch").value == base.batch_size
    assert at.number_input(key="train_lr").value == pytest.approx(base.lr)
    assert at.number_input(key="train_patch").value == base.patch_size
    assert at.slider(key="train_val").value == pytest.approx(base.val_fraction)
    assert at.toggle(key="train_augment").value is True
    assert at.button(key="train_start") and at.button(key="train_stop").disabled
    assert any("`membrane`" in m.value and "`cell`" in m.value for m in at.markdown)  # classes from the dataset
    assert at.checkbox(key="train_amp").value is base.amp
    assert at.number_input(key="train_edge_weight").value == pytest.approx(base.edge_weight)
    at.selectbox(key="train_loss").set_value("dice").run()
    assert at.number_input(key="train_edge_weight").disabled  # it weighs the cross-entropy: none here
    at.selectbox(key="train_loss").set_value(base.loss).run()
    at.selectbox(key="train_arch").set_value("Unet").run()
    assert at.selectbox(key="train_encoder").value == base.model.encoder  # replaces the width
    assert not [n for n in at.number_input if n.key == "train_width"]


def test_tiny_job_runs_with_the_augment_page_settings_and_is_listed(ws_env, page, make_dataset):
    make_dataset("tiny", z=3, labeled=(0, 1))
    at = AppTest.from_file(page("train.py"), default_timeout=60)
    aug = AugmentConfig(rotate_deg=10.0, brightness=0.1)
    at.session_state["augment_config"] = aug.to_dict()  # as the Augment page leaves it
    _tiny(at.run())
    at.number_input(key="train_edge_weight").set_value(2.0).run()
    assert "rotation ± 10" in " ".join(c.value for c in at.caption)
    at.button(key="train_start").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    run_id = at.session_state["train_run_id"]
    snap = _wait(run_id)
    assert snap["state"] == "done", snap["error"]
    assert ws_env.catalog.run(run_id)["config"]["augment"] == aug.to_dict()
    assert ws_env.catalog.run(run_id)["config"]["edge_weight"] == 2.0

    at.run()  # the page after the job: final state, runs table, comparison, downloads
    assert not at.exception
    assert any("Done" in s.value for s in at.success)
    table = at.dataframe[0].value
    assert list(table["run id"]) == [run_id] and list(table["state"]) == ["done"]
    assert list(table["epochs"]) == ["1/1"] and table["device"].iloc[0].startswith("cpu")
    # the run's end scored its validation slices (whole, with the tuned decision): beside its Dice
    val_iou = ws_env.catalog.run(run_id)["extra"]["finish"]["val"]
    iou = float(table["validation IoU"].iloc[0])
    assert iou == pytest.approx(val_iou.get("iou_fg", val_iou.get("mean_iou")), abs=1e-4)
    assert list(table["test IoU"]) == ["—"]  # no test slices in this run: said, not a raw None
    score = ws_env.catalog.run(run_id)["extra"]["finish"]["val"]["dice_fg"]
    assert list(table["score"]) == [f"validation foreground Dice {score:.3f}"]
    assert not any(str(v) in ("None", "nan") for v in table.to_numpy().ravel())
    assert at.multiselect(key="train_compare").value == [run_id]
    assert at.get_by_key("train_compare_chart")
    assert at.download_button(key="train_dl_best") and at.download_button(key="train_dl_bundle")
    assert at.button(key=f"tools_model_prepare_{run_id}")  # the run as a bioimage.io package, from here too

    # a fresh session (page refresh) finds the job again through the registry
    again = AppTest.from_file(page("train.py"), default_timeout=60).run()
    assert any(run_id in m.value for m in again.markdown)
    # ... and its form shows that run's settings, not the recipe's defaults
    assert again.selectbox(key="train_arch").value == "classic"
    assert again.number_input(key="train_width").value == 4
    assert again.number_input(key="train_epochs").value == 1
    assert again.number_input(key="train_batch").value == 2
    assert again.number_input(key="train_patch").value == 32
    assert again.number_input(key="train_steps").value == 2
    assert again.number_input(key="train_edge_weight").value == 2.0
    assert again.session_state["augment_config"] == aug.to_dict()
    assert any(run_id in c.value and "settings of run" in c.value for c in again.caption)  # says where from


def test_second_start_refused_then_stop_and_resume(ws_env, page, make_dataset):
    make_dataset("tiny", z=3, labeled=(0, 1))
    at = _tiny(AppTest.from_file(page("train.py"), default_timeout=60).run(), epochs=2, steps=2000)
    at.toggle(key="train_augment").set_value(False).run()
    at.button(key="train_start").click().run()
    first = at.session_state["train_run_id"]
    assert registry().get(first).is_active()
    assert ws_env.catalog.run(first)["config"]["augment"]["flips"] is False  # augmentation switched off

    at.button(key="train_start").click().run()
    assert not at.exception
    assert any("already running" in e.value for e in at.error)
    assert at.session_state["train_run_id"] == first

    _stepping(first)
    at.button(key="train_stop").click().run()
    assert _wait(first)["state"] == "stopped"
    at.run()
    assert any("Stopped" in w.value for w in at.warning)

    at.number_input(key="train_steps").set_value(3)  # not used: a resumed run keeps its own settings
    at.number_input(key="train_epochs").set_value(3).run()
    assert at.selectbox(key="train_resume_run").value == first
    at.button(key="train_resume").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    resumed = at.session_state["train_run_id"]
    assert resumed != first and registry().get(resumed).is_active()
    run = ws_env.catalog.run(resumed)
    assert run["extra"]["resumed_from"] == first
    assert run["config"]["epochs"] == 3 and run["config"]["steps_per_epoch"] == 2000
    assert run["config"]["augment"]["flips"] is False
    at.button(key="train_stop").click().run()
    assert _wait(resumed)["state"] == "stopped"


def test_resume_works_as_soon_as_the_page_says_stopped(ws_env, page, make_dataset):
    """The page reads "stopped" only once the worker has ended: Resume pressed at that moment starts
    (it was refused "a training job is already running" while the worker was still finishing)."""
    make_dataset("tiny", z=3, labeled=(0, 1))
    at = _tiny(AppTest.from_file(page("train.py"), default_timeout=60).run(), epochs=2, steps=2000)
    at.button(key="train_start").click().run()
    first = at.session_state["train_run_id"]
    _stepping(first)
    at.button(key="train_stop").click().run()
    deadline = time.monotonic() + TIMEOUT_S
    while not any("Stopped after" in w.value for w in at.warning) and time.monotonic() < deadline:
        assert any(i.value.startswith("Stopping ...") for i in at.info)  # never "stopped" before it is
        time.sleep(0.2)
        at.run()
    assert any("Stopped after" in w.value for w in at.warning), "the page never said stopped"
    assert at.selectbox(key="train_resume_run").value == first
    at.button(key="train_resume").click().run()  # at once: no wait
    assert not at.exception and not at.error, [e.value for e in at.error]
    resumed = at.session_state["train_run_id"]
    assert resumed != first and ws_env.catalog.run(resumed)["extra"]["resumed_from"] == first
    registry().get(resumed).stop()
    assert _wait(resumed)["state"] in ("stopped", "done")


def test_failed_job_shows_its_error(ws_env, page, make_dataset):
    make_dataset("tiny", z=3, labeled=(0, 1))
    for png in (ws_env.dataset_dir("tiny") / "masks").glob("*.png"):
        png.unlink()  # the catalog still lists the masks: the worker fails when it reads them
    at = _tiny(AppTest.from_file(page("train.py"), default_timeout=60).run())
    at.button(key="train_start").click().run()
    run_id = at.session_state["train_run_id"]
    assert _wait(run_id)["state"] == "failed"
    at.run()
    assert not at.exception
    assert any(e.value.startswith("Training failed:") for e in at.error)
    table = at.dataframe[0].value
    assert table["state"].iloc[0] == "failed" and table["error"].iloc[0]


def test_interrupted_run_is_shown_and_resumed(ws_env, page, make_dataset):
    """A run whose process died (server restart, kill -9) reads 'interrupted' and resumes from here."""
    import socket
    import subprocess
    import sys

    from core.train.headless import train_headless

    make_dataset("tiny", z=3, labeled=(0, 1))
    tiny = {
        "model": {"arch": "classic", "classic_width": 4},
        "patch_size": 32,
        "batch_size": 2,
        "steps_per_epoch": 2,
        "epochs": 1,
        "amp": False,
    }
    first = train_headless(ws_env, "tiny", config=tiny)["run_id"]
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    ws_env.catalog.update_run(first, state="running", owner_pid=dead.pid, owner_host=socket.gethostname())

    at = AppTest.from_file(page("train.py"), default_timeout=60).run()
    assert not at.exception
    assert list(at.dataframe[0].value["state"]) == ["interrupted"]
    assert any(first in w.value and "interrupted" in w.value for w in at.warning)
    assert at.selectbox(key="train_resume_run").value == first
    at.number_input(key="train_epochs").set_value(2).run()
    at.button(key="train_resume").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    resumed = at.session_state["train_run_id"]
    assert resumed != first and _wait(resumed)["state"] == "done"
    assert ws_env.catalog.run(resumed)["extra"]["resumed_from"] == first
    assert len(ws_env.catalog.epochs(resumed)) == 2


def test_stop_shows_stopping_at_once(ws_env, page, make_dataset, monkeypatch):
    """Between Stop and the worker's next step the page says "Stopping ..." (held here by a gate)."""
    import threading

    from core.train.job import TrainingJob

    gate = threading.Event()
    check = TrainingJob._check_stop

    def held(self):
        if self._stop.is_set():
            gate.wait(TIMEOUT_S)
        check(self)

    monkeypatch.setattr(TrainingJob, "_check_stop", held)
    make_dataset("tiny", z=3, labeled=(0, 1))
    at = _tiny(AppTest.from_file(page("train.py"), default_timeout=60).run(), epochs=2, steps=2000)
    at.button(key="train_start").click().run()
    run_id = at.session_state["train_run_id"]
    try:
        at.button(key="train_stop").click().run()
        assert not at.exception
        assert any(i.value.startswith("Stopping ...") for i in at.info)
        assert at.button(key="train_stop").disabled  # no second stop
        assert registry().get(run_id).snapshot()["state"] == "stopping"
    finally:
        gate.set()
    assert _wait(run_id)["state"] == "stopped"


def test_compare_and_download_default_to_the_newest_run(ws_env, page, make_dataset):
    make_dataset("tiny", z=3, labeled=(0, 1))
    at = _tiny(AppTest.from_file(page("train.py"), default_timeout=60).run())
    at.button(key="train_start").click().run()
    first = at.session_state["train_run_id"]
    _wait(first)
    at.run()
    assert at.multiselect(key="train_compare").value == [first]
    assert at.selectbox(key="train_dl_run").value == first
    at.button(key="train_start").click().run()
    second = at.session_state["train_run_id"]
    _wait(second)
    at.run()
    assert not at.exception
    assert at.multiselect(key="train_compare").value[0] == second  # the newest first, then the one before
    assert at.selectbox(key="train_dl_run").value == second


def test_form_follows_the_dataset_picked_in_the_sidebar(ws_env, page, make_dataset):
    """Each dataset's form shows its own last run's settings, also after switching in the sidebar."""
    make_dataset("first", z=3, labeled=(0, 1))
    make_dataset("second", z=3, labeled=(0, 1))
    for name, epochs, width in (("first", 3, 8), ("second", 7, 12)):
        config = default_config(2).to_dict()
        config["epochs"], config["model"]["arch"], config["model"]["classic_width"] = epochs, "classic", width
        ws_env.catalog.create_run(f"{name}-run", name, config, state="done")

    at = AppTest.from_file(page("train.py"), default_timeout=60).run()
    assert not at.exception and at.session_state["dataset"] == "first"
    assert at.number_input(key="train_epochs").value == 3 and at.number_input(key="train_width").value == 8
    at.selectbox(key="_dataset_box").set_value("second").run()
    assert not at.exception
    assert at.number_input(key="train_epochs").value == 7 and at.number_input(key="train_width").value == 12
    assert any("second-run" in c.value for c in at.caption)


def _in_order(at: AppTest) -> list:
    """Every element of the page's main area, in the order the page shows them."""
    out = []

    def walk(node) -> None:
        children = getattr(node, "children", None)
        if isinstance(children, dict):
            for child in children.values():
                out.append(child)
                walk(child)

    walk(at.main)
    return out


def test_running_job_first_and_the_form_folded_below(ws_env, page, make_dataset):
    """While a run is active the page opens on it (progress, Stop) and folds the form for a new run."""
    make_dataset("tiny", z=3, labeled=(0, 1))
    at = _tiny(AppTest.from_file(page("train.py"), default_timeout=60).run(), epochs=2, steps=2000)
    (form,) = [e for e in at.expander if e.label.startswith("New run")]
    assert form.proto.expanded  # nothing runs: the form is open
    at.button(key="train_start").click().run()
    run_id = at.session_state["train_run_id"]
    try:
        again = AppTest.from_file(page("train.py"), default_timeout=60).run()  # a reload while it runs
        (form,) = [e for e in again.expander if e.label.startswith("New run")]
        assert not form.proto.expanded and "a run is active" in form.label
        order = _in_order(again)
        kinds = [(type(e).__name__, getattr(e, "key", None)) for e in order]
        stop = kinds.index(("Button", "train_stop"))
        arch = next(i for i, e in enumerate(order) if getattr(e, "key", None) == "train_arch")
        progress = next(i for i, e in enumerate(order) if getattr(e, "type", "") == "progress")
        assert progress < stop < arch  # progress and Stop above the form
    finally:
        registry().get(run_id).stop()
        _wait(run_id)


def test_after_a_reload_the_top_shows_the_interrupted_run_not_an_older_done_one(ws_env, page, make_dataset):
    import socket
    import subprocess
    import sys

    make_dataset("tiny", z=3, labeled=(0, 1))
    ws_env.catalog.create_run("tiny-20261207-010000-aaaa", "tiny", {"epochs": 2}, state="done")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    from core.data.owner import Owner

    ws_env.catalog.create_run(
        "tiny-20261207-020000-bbbb", "tiny", {"epochs": 2}, state="running", owner=Owner(dead.pid, socket.gethostname())
    )
    at = AppTest.from_file(page("train.py"), default_timeout=60).run()
    assert not at.exception
    order = _in_order(at)
    first_warning = next(e for e in order if type(e).__name__ == "Warning")
    assert "tiny-20261207-020000-bbbb` was interrupted" in first_warning.value
    runs_named = [m.value for m in at.markdown if m.value.startswith("**Run `")]
    assert runs_named and "tiny-20261207-020000-bbbb" in runs_named[0]  # the top block: the interrupted run
    assert not any("010000-aaaa" in m for m in runs_named)
