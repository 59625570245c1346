"""The train / validation / test split (core.train.data.plan_split): blocks for stacks, a gap so
neighbouring slices never straddle the split, users' validation and test slices."""

from __future__ import annotations

import pytest

from core.data.zrange import format_slices, parse_slices
from core.train.config import TrainConfig
from core.train.data import block_split, looks_like_stack, plan_split, split_for

STACK = [f"vol_{z:04d}" for z in range(40)]
FILES = [f"cell{c}" for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"]


def _min_distance(a, b) -> int:
    return min(abs(x - y) for x in a for y in b)


@pytest.mark.parametrize("n", [3, 5, 10, 24, 40, 165])
@pytest.mark.parametrize("gap", [1, 2, 5])
@pytest.mark.parametrize("fraction", [0.05, 0.1, 0.3])
def test_block_split_never_puts_adjacent_slices_across_the_split(n, gap, fraction):
    train, val, left = block_split(range(n), fraction, gap)
    assert sorted(train + val + left) == list(range(n)) and not set(train) & set(val)
    assert val == list(range(val[0], val[-1] + 1)), "one contiguous block"
    assert val[-1] == n - 1, "at the end of the stack"
    if n - len(val) > gap:  # room for the gap: no training slice is within gap of a validation one
        assert _min_distance(train, val) > gap
    assert train, "at least one slice always trains"


def test_plan_split_for_a_stack_is_a_block_with_a_gap_and_files_stay_random():
    s = plan_split(range(40), STACK, val_fraction=0.1, gap=2)
    assert (s.mode, s.val, s.left_out) == ("block", [36, 37, 38, 39], [34, 35]) and s.train == list(range(34))
    assert "validation 36-39" in s.describe()
    r = plan_split(range(26), FILES, val_fraction=0.2, seed=1)
    assert r.mode == "random" and r.gap == 0 and not r.left_out and len(r.val) == 5
    assert r.val != list(range(21, 26))
    assert plan_split(range(26), FILES, mode="block", val_fraction=0.2, gap=1).val == list(range(21, 26))


def test_test_slices_are_never_trained_nor_validated_on_and_keep_the_gap():
    s = plan_split(range(40), STACK, val_fraction=0.1, gap=3, test_slices=range(30, 40))
    assert s.test == list(range(30, 40)) and not set(s.test) & (set(s.train) | set(s.val))
    assert _min_distance(s.train, s.val + s.test) > 3 and _min_distance(s.val, s.test) >= 1
    assert "test 30-39 (10)" in s.describe()


def test_users_validation_slices_win_and_bad_choices_are_refused():
    s = plan_split(range(40), STACK, val_slices=[10, 11, 12], gap=2)
    assert s.mode == "chosen" and s.val == [10, 11, 12] and s.left_out == [8, 9, 13, 14]
    with pytest.raises(ValueError, match="no mask"):
        plan_split([0, 1, 2, 3], STACK, val_slices=[20])
    with pytest.raises(ValueError, match="out of range"):
        plan_split(range(40), STACK, test_slices=[99])
    with pytest.raises(ValueError, match="both"):
        plan_split(range(40), STACK, val_slices=[3], test_slices=[3])
    with pytest.raises(ValueError, match="leave some"):
        plan_split(range(3), STACK, test_slices=[0, 1, 2])


def test_tiny_datasets_still_train_and_say_why_the_gap_is_short():
    s = plan_split([0, 1], STACK, gap=2)
    assert s.train == [0] and s.val == [1] and s.notes
    one = plan_split([5], STACK)
    assert one.train == [5] and one.val == [5] and "only one" in one.notes[0]


def test_split_for_takes_the_config_and_widens_the_gap_to_the_context():
    cfg = TrainConfig.from_dict({"context": 4, "val_gap": 1, "test_slices": [39]})
    assert cfg.model.in_channels == 9
    s = split_for(range(40), STACK, cfg)
    assert s.gap == 4 and _min_distance(s.train, s.val + s.test) > 4 and s.test == [39]
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError):
        TrainConfig.from_dict({"val_slices": "3"})
    with pytest.raises(ValueError):
        TrainConfig.from_dict({"val_split": "sideways"})


def test_stack_detection_and_slice_text():
    assert looks_like_stack(STACK) and looks_like_stack(["001", "002", "003"])
    assert looks_like_stack(["train-00", "train-01", "test-00", "test-01"])  # the ISBI sample
    assert not looks_like_stack(["a-1", "b-1", "c-1"]) and not looks_like_stack(["s1", "t1", "s2"])
    assert not looks_like_stack(FILES) and not looks_like_stack(["img_3", "img_7"])
    assert parse_slices("130-164") == list(range(130, 165)) and parse_slices("") == []
    assert format_slices(parse_slices("0-2, 5, 7-8")) == "0-2, 5, 7-8"
    for bad in ("a-b", "5-3", "-1"):
        with pytest.raises(ValueError):
            parse_slices(bad)
