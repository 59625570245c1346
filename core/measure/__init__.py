"""Measure layer: objects in a segmentation and what they measure.

Owns :mod:`~core.measure.objects` (connected components of each foreground class, per slice in 2D
or through the stack in 3D, and the optional watershed split of touching objects),
:mod:`~core.measure.props` (per-object measurements with ``skimage.measure.regionprops_table``, in
pixels and in physical units), :mod:`~core.measure.tables` (per-slice and per-dataset counts,
densities, area fractions; CSV, Excel and instance-label TIFF writers), :mod:`~core.measure.labels_zarr`
(the instance labels as OME-Zarr labels beside the raw image), :mod:`~core.measure.blocks`
(3D objects of a volume too large for memory, a block of slices at a time, merged across blocks) and
:mod:`~core.measure.trust` (how far a model's objects agree with human truth: matched detections at
IoU 0.5, count and size bias, KS distance of the size distributions).

numpy, scipy, scikit-image and pandas (zarr and ome-zarr for the OME-Zarr labels): never torch, never streamlit.
May import: :mod:`core.data` (and :mod:`core.store`, not needed so far; :mod:`core.errors`).
"""
