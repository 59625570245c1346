"""Label page: a live round whose prediction does no better than a plain threshold of the image on
the slice's strokes says the model is not yet usable (issue 27 point 3)."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import core.workflow.live as live
from pages._label_live import ROUND_KEY

pytestmark = pytest.mark.usefixtures("live_warmed")  # see tests/pages/conftest.py


def _finished_round(ws, usable: bool) -> live.LiveRound:
    r = live.LiveRound(ws, "tiny", 0, 40.0, run_id="tiny-20261207-000000-0001", state="done", steps=175)
    r.prediction = np.zeros((32, 48), np.uint8)
    r.first_step_s, r.trained_s, r.total_s = 5.6, 41.0, 43.2
    r.judgement = {"model": 0.9 if usable else 0.4, "baseline": 0.7, "pixels": 90, "usable": usable}
    return r


@pytest.mark.parametrize("usable", [False, True])
def test_a_round_no_better_than_a_threshold_says_not_yet_usable(ws_env, page, make_dataset, monkeypatch, usable):
    make_dataset("tiny", z=3, shape=(32, 48), labeled=(0,))
    at = AppTest.from_file(page("label.py"), default_timeout=60)
    at.session_state[ROUND_KEY] = _finished_round(ws_env, usable)  # the session's round, ended
    at.run()
    assert not at.exception
    said = [c.value for c in at.caption if "Prediction of slice 0" in c.value]
    assert said and "first step after 6 s" in said[0] and "a plain threshold 0.70" in said[0]
    warned = [w.value for w in at.warning if "not yet usable" in w.value]
    assert bool(warned) is not usable
