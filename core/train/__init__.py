"""Training layer: a run from a workspace dataset to checkpoints and catalog rows.

Owns the train/validation split, patches, the training loop, the background job and its progress
snapshot, and the run's reproducibility bundle (:mod:`~core.train.training`). May import:
:mod:`core.data`, :mod:`core.store`, :mod:`core.nn`; not prediction, workflow, view or streamlit.
"""
