"""The bundled ISBI 2012 sample: shipped with attribution, imported once on first start."""

from core.store.workspace import Workspace
from core.workflow.sample import SAMPLE_DIR, ensure_sample


def test_sample_ships_with_source_note():
    text = (SAMPLE_DIR / "SOURCE.md").read_text()
    assert "ISBI 2012" in text and "Cardona" in text
    assert len(list((SAMPLE_DIR / "train" / "images").glob("*.png"))) == 30
    assert len(list((SAMPLE_DIR / "test" / "images").glob("*.png"))) == 30


def test_first_start_imports_sample_once(tmp_path):
    ws = Workspace(tmp_path / "ws")
    info = ensure_sample(ws)
    assert info.name == "isbi2012" and info.shape == (60, 512, 512)
    assert info.class_names == ("membrane", "cell")
    assert info.counts()["labeled"] == 30 and info.counts()["unlabeled"] == 30
    m = ws.read_mask("isbi2012", 0)
    assert 0.7 < m.mean() < 0.85  # about 78 % of pixels are cell (class 1)
    ws.delete_dataset("isbi2012")
    assert ensure_sample(ws) is None and ws.dataset_names() == []  # deleted stays deleted
