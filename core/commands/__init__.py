"""The bodies of the ``python -m core`` commands; :mod:`core.cli` holds the parser, ``main()`` and
the exit codes, and dispatches here.

Each command is a function ``run_<command>(args) -> dict`` taking the parsed ``argparse.Namespace``
and returning the JSON summary that ``main()`` prints as the last line. Commands write only
``notice:``, ``warning:`` and progress lines to standard error, raise
:class:`~core.errors.SegDashError` for a user's mistake (exit 2), and import torch only inside the
commands that run a model, after their input has been checked. ``datasets`` holds the commands on
the workspace's data (import, export, list, delete, repair), ``models`` those that train or run a model
(train, predict, export-model), ``measure`` the objects of masks and predictions.

May import: errors, data, store, nn, train, predict, workflow (not view).
"""

from .datasets import FROM_BACKUP_HELP, REPAIR_PARSER, run_delete, run_export, run_import, run_list, run_repair
from .measure import run_measure
from .models import TrainingFailed, run_export_model, run_predict, run_train

__all__ = [
    "run_import",
    "run_export",
    "run_list",
    "run_delete",
    "run_repair",
    "REPAIR_PARSER",
    "FROM_BACKUP_HELP",
    "run_train",
    "run_predict",
    "run_export_model",
    "run_measure",
    "TrainingFailed",
]
