"""SegDash core: everything but the UI, usable headless (``python -m core --help``).

Subpackages by layer (stacks are (Z, Y, X) numpy arrays throughout); each may import only the
layers listed, which ``tests/core/test_package.py`` checks:

- :mod:`core.data`: stacks and files (read, write atomically, intensity, masks, owners). Imports
  nothing of core.
- :mod:`core.store`: the workspace on disk and its SQLite catalog. Imports data.
- :mod:`core.nn`: device, model, augmentation, metrics, checkpoints (torch). Imports data.
- :mod:`core.train`: training runs and jobs. Imports data, store, nn.
- :mod:`core.predict`: inference and stored predictions. Imports data, store, nn.
- :mod:`core.workflow`: import, export, sample, review, assist, guide. Imports all but view.
- :mod:`core.view`: overlays, figures, the label canvas. Imports data.
- :mod:`core.cli`: the headless command line (``python -m core``), beside the pages as a front end.

Importing ``core`` imports neither streamlit nor torch.
"""

__version__ = "0.1.0"
