"""Prediction layer: a checkpoint applied to a slice, a stack or a workspace dataset.

Numpy in, numpy out; torch lives only in :mod:`~core.predict.inferer` (and the modules that run it:
:mod:`~core.predict.stack`, :mod:`~core.predict.dataset`). Axis orders: an image slice is (Y, X) in
its stored dtype, a stack is (Z, Y, X), probabilities are (K, Y, X) float32 with one channel per
class (two for a binary model: background, foreground).

Modules: :mod:`~core.predict.config` (settings and results), :mod:`~core.predict.inferer` (tiled,
blended inference of one slice), :mod:`~core.predict.probabilities` (labels, uncertainty, stored
probability TIFFs; numpy), :mod:`~core.predict.hyperstack` (prediction TIFFs as ImageJ hyperstacks;
numpy), :mod:`~core.predict.stack` (stacks slice by slice, ``python -m core
predict``), :mod:`~core.predict.stored` (a dataset's stored predictions and their scores; numpy),
:mod:`~core.predict.dataset` (predicting a dataset, in the background too; in a worker process,
:mod:`~core.predict.worker`, through :mod:`~core.predict.protocol`), :mod:`~core.predict.volume`
(a Zarr volume chunk by chunk, shared among torchrun ranks). May import:
:mod:`core.data`, :mod:`core.store`, :mod:`core.nn`; not training, workflow, view or streamlit.
"""
