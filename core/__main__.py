"""``python -m core``: the headless command line (see :mod:`core.cli`)."""

import os
import sys

if os.environ.get("SEGDASH_SHARE_CPU", "1") != "0":  # before torch loads OpenMP: see core/nn/device.py
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .cli import main  # noqa: E402

sys.exit(main())
