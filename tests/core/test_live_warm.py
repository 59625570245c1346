"""core.workflow.live warms up, once, what a round imports (smp's losses, MONAI's inference), so the
first step does not wait for those imports after the press."""

import sys


def test_warm_up_imports_what_a_round_needs_once_in_the_background():
    import core.workflow.live as live

    first = live.warm_up()  # started when the module was imported (the Label page imports it)
    assert live.warm_up() is first  # once per process
    first.join(120)
    assert not first.is_alive()
    assert "segmentation_models_pytorch.losses" in sys.modules and "core.predict.inferer" in sys.modules
