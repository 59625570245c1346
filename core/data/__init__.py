"""Data layer: stacks and files, with numpy and the file formats only.

Owns reading stacks (TIFF, PNG/JPEG/BMP, ZIP, folder) and writing TIFF/PNG atomically
(:mod:`~core.data.io`), intensity windows and normalisation (:mod:`~core.data.intensity`), masks as
class indices and their value checks (:mod:`~core.data.masks`), and which process owns a file or
a job (:mod:`~core.data.owner`, used to name atomic writes' temporary files), OME-Zarr
(:mod:`~core.data.omezarr`) and Zarr volumes read a block at a time (:mod:`~core.data.chunked`). Stacks are (Z, Y, X)
numpy arrays throughout. May import: nothing of ``core`` outside ``core.data`` (numpy, tifffile,
Pillow and the standard library); never torch or streamlit.
"""
