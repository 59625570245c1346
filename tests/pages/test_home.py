"""Home page: counts of the current dataset, the last run, and next-step suggestions."""

from streamlit.testing.v1 import AppTest


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_home_shows_sample_counts_on_first_start(ws_env, page):
    at = AppTest.from_file(page("home.py"), default_timeout=60).run()
    assert not at.exception
    assert at.sidebar.selectbox(key="_dataset_box").value == "isbi2012"
    m = _metrics(at)
    assert m["Slices"] == "60" and m["Labeled"] == "30" and m["Unlabeled"] == "30"
    # masks but no run: train next
    assert any("Train a first model" in md.value for md in at.markdown)


def test_home_counts_statuses_and_last_run(ws_env, page, make_dataset):
    make_dataset("tiny", z=4, labeled=(0, 1))
    ws_env.save_mask("tiny", 1, ws_env.read_mask("tiny", 1), status="edited")
    ws_env.catalog.create_run("run-0001", "tiny", {"epochs": 1}, state="done")
    ws_env.catalog.add_epoch("run-0001", 1, {"val_dice": 0.95, "val_dice_fg": 0.8766})
    ws_env.catalog.update_run("run-0001", best_dice=0.95, best_checkpoint="runs/run-0001/best.pt")
    at = AppTest.from_file(page("home.py"), default_timeout=60).run()
    assert not at.exception
    m = _metrics(at)
    assert (m["Slices"], m["Labeled"], m["Edited"], m["From prediction"], m["Unlabeled"]) == ("4", "1", "1", "0", "2")
    assert m["Run"] == "run-0001" and m["Validation foreground Dice"] == "0.877" and m["Epochs"] == "1/1"
    text = " ".join(md.value for md in at.markdown)
    assert "Predict the dataset" in text  # a trained run and no prediction


def test_home_without_masks_suggests_labeling(ws_env, page, make_dataset):
    make_dataset("bare", z=2, labeled=())
    at = AppTest.from_file(page("home.py"), default_timeout=60).run()
    assert not at.exception
    assert "Label a few slices" in " ".join(md.value for md in at.markdown)


def test_home_says_a_run_was_interrupted(ws_env, page, make_dataset):
    import socket
    import subprocess
    import sys

    from core.data.owner import Owner

    make_dataset("tiny", z=2, labeled=(0,))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    ws_env.catalog.create_run(
        "run-killed", "tiny", {"epochs": 3}, state="running", owner=Owner(dead.pid, socket.gethostname())
    )
    at = AppTest.from_file(page("home.py"), default_timeout=60).run()
    assert not at.exception
    assert "Run" not in _metrics(at)  # an interrupted run is not the last finished one
    assert any("run-killed was interrupted" in w.value and "no checkpoint yet" in w.value for w in at.warning)

    last = ws_env.run_dir("run-killed") / "last.pt"
    last.write_bytes(b"weights")
    ws_env.catalog.update_run("run-killed", last_checkpoint=str(last))
    at = AppTest.from_file(page("home.py"), default_timeout=60).run()
    assert any("run-killed was interrupted" in w.value and "resume it" in w.value for w in at.warning)
    assert "Resume the interrupted training" in " ".join(md.value for md in at.markdown)


def test_home_last_run_is_the_last_finished_one_and_interrupted_ones_apart(ws_env, page, make_dataset):
    make_dataset("tiny", z=4, labeled=(0, 1))
    ws_env.catalog.create_run("tiny-20261207-031500-ab12", "tiny", {"epochs": 2}, state="done")
    ws_env.catalog.add_epoch("tiny-20261207-031500-ab12", 1, {"val_dice": 0.98, "val_dice_fg": 0.91})
    ws_env.catalog.update_run(
        "tiny-20261207-031500-ab12",
        best_dice=0.98,
        extra={"class_names": ["background", "cell"], "finish": {"test": {"dice_fg": 0.876}}},
    )
    ws_env.catalog.create_run("tiny-20261207-041500-cd34", "tiny", {"epochs": 2}, state="interrupted")
    ws_env.catalog.create_run("tiny-live-20261207-051500-0001", "tiny", {"epochs": 9}, state="stopped")
    at = AppTest.from_file(page("home.py"), default_timeout=60).run()
    assert not at.exception
    m = _metrics(at)
    assert m["Run"] == "tiny · Dec 07 03:15" and m["Test foreground Dice"] == "0.876" and m["Epochs"] == "1/2"
    assert any("`tiny-20261207-031500-ab12`" in c.value for c in at.caption)  # the full name beside the short one
    assert [w.value.split(" was ")[0] for w in at.warning] == ["Run tiny-20261207-041500-cd34"]


def test_home_on_a_workspace_that_is_not_writable(ws_env, page, monkeypatch):
    import os

    root = ws_env.root
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if str(p) == str(root) else real(p, m))
    at = AppTest.from_file(page("home.py"), default_timeout=60).run()
    assert not at.exception
    assert [e.value for e in at.error] == [  # the server's folder stays on the server (issue 25.5)
        "the workspace folder is not writable; choose a writable folder "
        "with SEGDASH_WORKSPACE or --workspace, or make it writable"
    ]
    assert str(root) not in at.error[0].value
