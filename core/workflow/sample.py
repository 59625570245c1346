"""The bundled sample: ISBI 2012 Drosophila EM membrane data (see ``data/sample/isbi2012/SOURCE.md``).

Imported as the dataset ``isbi2012``: the 30 labeled training slices (``train-00`` .. ``train-29``,
classes 0 = membrane, 1 = cell) followed by the 30 unlabeled test slices (``test-00`` .. ``test-29``),
so a new user can label, train and predict with no upload.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.io import read_stack
from ..data.masks import to_labels
from ..errors import SegDashError
from ..store.workspace import DatasetInfo, Workspace

__all__ = ["SAMPLE_DIR", "SAMPLE_NAME", "SAMPLE_CLASSES", "SAMPLE_MARKER", "import_sample", "ensure_sample"]


def _sample_dir() -> Path:
    """The checkout's ``data/sample/isbi2012``; in an installed package (``pip install .``) where the
    wheel put it: ``<prefix>/share/segdash/sample/isbi2012`` (a venv's, the user's or the system's)."""
    here = Path(__file__).resolve().parents[2] / "data" / "sample" / "isbi2012"
    if here.is_dir():
        return here
    import sys
    import sysconfig

    prefixes = [sysconfig.get_paths()["data"], sys.prefix]
    try:
        prefixes.append(sysconfig.get_paths(sysconfig.get_preferred_scheme("user"))["data"])
    except (KeyError, ValueError):
        pass
    for prefix in prefixes:
        found = Path(prefix) / "share" / "segdash" / "sample" / "isbi2012"
        if found.is_dir():
            return found
    return here


SAMPLE_DIR = _sample_dir()
SAMPLE_NAME = "isbi2012"
SAMPLE_CLASSES = ("membrane", "cell")
SAMPLE_MARKER = ".sample-imported"  # in the workspace root: the sample was imported once (never again)


def import_sample(ws: Workspace, name: str = SAMPLE_NAME, sample_dir: Path = SAMPLE_DIR) -> DatasetInfo:
    """Import the bundled ISBI 2012 sample into ``ws`` as dataset ``name``."""
    train = read_stack(sample_dir / "train" / "images")
    labels = read_stack(sample_dir / "train" / "labels")
    test = read_stack(sample_dir / "test" / "images")
    if train.names != labels.names:
        raise SegDashError(f"{sample_dir}: training images and labels do not pair")
    masks = to_labels(np.asarray(labels.data), source="ISBI labels").labels
    images = np.concatenate([train.data, test.data])
    names = [f"train-{n}" for n in train.names] + [f"test-{n}" for n in test.names]
    mask_list = list(masks) + [None] * test.shape[0]
    return ws.create_dataset(
        name,
        images,
        mask_list,
        list(SAMPLE_CLASSES),
        names,
        source="bundled sample: ISBI 2012 EM segmentation challenge (data/sample/isbi2012)",
    )


def ensure_sample(ws: Workspace) -> DatasetInfo | None:
    """On first start (no dataset ever imported here), import the sample; returns it or ``None``.

    A marker file remembers the import, so a user who deletes the sample does not get it back.
    """
    marker = ws.root / SAMPLE_MARKER
    if marker.exists() or ws.dataset_names() or ws.unlisted().datasets:  # dataset folders: not a new workspace
        return None
    try:
        info = import_sample(ws)
    except ValueError:
        if ws.name_taken(SAMPLE_NAME):  # another session imports it, or did a moment ago
            return None
        raise
    marker.write_text("the bundled sample was imported once; delete this file to import it again\n")
    return info
