"""Prediction layer: a checkpoint applied to a slice, a stack or a workspace dataset.

Owns tiled and test-time-augmented inference, probabilities and uncertainty, stored predictions
(masks, ``prob.tif``, summary) and scoring them against the masks (:mod:`~core.predict.inference`).
May import: :mod:`core.data`, :mod:`core.store`, :mod:`core.nn`; not training, workflow, view or
streamlit.
"""
