"""Network layer: everything torch that is neither a training run nor a prediction.

Owns the device policy (:mod:`~core.nn.device`), the model factory and its frozen config
(:mod:`~core.nn.model`), augmentation (:mod:`~core.nn.augment`), metrics on label arrays
(:mod:`~core.nn.metrics`), checkpoint files (:mod:`~core.nn.checkpoint`) and the torchrun process
group shared by training and prediction (:mod:`~core.nn.distributed`). May import:
:mod:`core.data`; not the workspace (:mod:`core.store`), training, prediction or streamlit.
"""
