"""SegDash core: everything but the UI, usable headless (``python -m core --help``).

Modules, one per concern (stacks are (Z, Y, X) numpy arrays throughout):

- :mod:`core.io`: read stacks (TIFF, PNG/JPEG/BMP, ZIP, folder), write TIFF/PNG atomically.
- :mod:`core.intensity`: percentile normalisation for display and for the network.
- :mod:`core.masks`: masks to class indices; stray-value detection.
- :mod:`core.workspace` / :mod:`core.catalog`: datasets, versioned masks, runs, SQLite catalog.
- :mod:`core.owner`: which process owns an import, a run or a temporary file, and whether it is gone.
- :mod:`core.ingest`: import with image/mask pairing. :mod:`core.export`: ZIP/TIFF exports.
- :mod:`core.sample`: the bundled ISBI 2012 sample.
- :mod:`core.model`, :mod:`core.augment`, :mod:`core.metrics`, :mod:`core.training`,
  :mod:`core.checkpoint`, :mod:`core.inference`, :mod:`core.review`: learning and prediction (torch).

Importing ``core`` imports neither streamlit nor torch.
"""

__version__ = "0.1.0"
