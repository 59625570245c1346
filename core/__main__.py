"""``python -m core``: the headless command line (see :mod:`core.cli`)."""

import sys

from .cli import main

sys.exit(main())
