"""Augment page: a widget per AugmentConfig field, a grid of examples, re-draw, and the stored config."""

from __future__ import annotations

from dataclasses import fields

from streamlit.testing.v1 import AppTest

from core.nn.augment import AugmentConfig


def test_grid_of_examples_on_the_sample_and_config_stored(ws_env, page):
    at = AppTest.from_file(page("augment.py"), default_timeout=60).run()
    assert not at.exception
    for f in fields(AugmentConfig):  # one widget per setting, found by key
        assert at.get_by_key(f"aug_{f.name}") is not None
    assert at.selectbox(key="aug_slice").value == 0  # first labeled slice of the sample
    n = at.select_slider(key="aug_n").value
    assert len(at.image) == n + 1  # the original and n examples
    assert at.session_state["augment_config"] == AugmentConfig().to_dict()


def test_redraw_changes_the_examples_and_keeps_the_settings(ws_env, page, make_dataset):
    make_dataset("tiny", z=2, shape=(32, 48), labeled=(1,))
    at = AppTest.from_file(page("augment.py"), default_timeout=60).run()
    at.slider(key="aug_rotate_deg").set_value(30.0)
    at.slider(key="aug_brightness").set_value(0.2)
    at.slider(key="aug_p").set_value(1.0).run()
    before = [img.value for img in at.image]
    at.button(key="aug_redraw").click().run()
    assert not at.exception
    after = [img.value for img in at.image]
    assert len(after) == len(before) and after[1:] != before[1:] and after[0] == before[0]
    assert at.session_state["augment_seed"] == 1
    stored = AugmentConfig.from_dict(at.session_state["augment_config"])
    assert (stored.rotate_deg, stored.brightness, stored.p) == (30.0, 0.2, 1.0)


def test_settings_survive_leaving_the_page(ws_env, page, make_dataset):
    make_dataset("tiny", z=1, shape=(32, 48), labeled=(0,))
    at = AppTest.from_file(page("augment.py"), default_timeout=60)
    at.session_state["augment_config"] = AugmentConfig(flips=False, elastic=0.5).to_dict()  # set earlier
    at.run()
    assert at.checkbox(key="aug_flips").value is False
    assert at.slider(key="aug_elastic").value == 0.5
    at.button(key="aug_reset").click().run()
    assert at.session_state["augment_config"] == AugmentConfig().to_dict()


def test_dataset_without_labels_says_so(ws_env, page, make_dataset):
    make_dataset("bare", z=2, labeled=())
    at = AppTest.from_file(page("augment.py"), default_timeout=60).run()
    assert not at.exception
    assert any("no labeled slice" in i.value for i in at.info)
    assert at.session_state["augment_config"] == AugmentConfig().to_dict()


def test_mask_tint_can_be_switched_off(ws_env, page, make_dataset):
    """The switch shows the plain augmented images: other pictures, same draw, back on gives the tint again."""
    make_dataset("tiny", z=1, shape=(32, 48), labeled=(0,))
    at = AppTest.from_file(page("augment.py"), default_timeout=60).run()
    assert at.toggle(key="aug_tint").value is True
    tinted = [img.proto.imgs[0].url for img in at.image]
    at.toggle(key="aug_tint").set_value(False).run()
    assert not at.exception and any("mask tint off" in c.value for c in at.caption)
    plain = [img.proto.imgs[0].url for img in at.image]
    assert len(plain) == len(tinted) and plain[0] != tinted[0]  # media URLs are content hashes: pixels changed
    assert at.session_state["augment_seed"] == 0
    at.toggle(key="aug_tint").set_value(True).run()
    assert [img.proto.imgs[0].url for img in at.image] == tinted
