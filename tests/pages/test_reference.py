"""A Zarr volume imported by reference, in the pages: the Data page's choice between a copy and a
reference, and the Label page showing a slice read from the volume (its chunks only)."""

import numpy as np
import pytest
import zarr
from streamlit.testing.v1 import AppTest

from core.data.chunked import Volume
from core.workflow.ingest import import_dataset


def _planes(z: int, shape: tuple[int, int]) -> np.ndarray:
    return (np.indices((z, *shape)).sum(0) * 5 % 251).astype(np.uint8)


def _zarr(path, z=6, shape=(32, 48)) -> np.ndarray:
    data = _planes(z, shape)
    arr = zarr.create_array(str(path), shape=data.shape, chunks=(2, *shape), dtype="uint8")
    arr[:] = data
    return data


def _n5(path, z=6, shape=(32, 48)) -> np.ndarray:
    from tests.core.test_volume import write_n5

    data = _planes(z, shape)
    write_n5(path, data, (2, *shape))
    return data


@pytest.mark.parametrize("suffix", ["zarr", "n5"])
def test_data_page_imports_a_zarr_by_reference_or_as_a_copy(ws_env, page, make_dataset, tmp_path, monkeypatch, suffix):
    monkeypatch.setenv("SEGDASH_IMPORT_ROOTS", str(tmp_path))
    make_dataset("tiny")  # not empty: no sample import
    vol = tmp_path / f"vol.{suffix}"
    data = (_zarr if suffix == "zarr" else _n5)(vol)
    at = AppTest.from_file(page("data.py"), default_timeout=60).run()
    assert not at.exception
    assert at.radio(key="data_zarr_mode").value == "copy"
    for name, mode in (("byref", "reference"), ("copied", "copy")):
        at.text_input(key="data_name").input(name)
        at.text_input(key="data_path").input(str(vol))
        at.radio(key="data_zarr_mode").set_value(mode)
        at.button(key="data_import").click().run()
        assert not at.exception and not at.error, [e.value for e in at.error]
    assert ws_env.dataset("byref").volume == str(vol.resolve())
    assert not ws_env.images_path("byref").exists()
    assert ws_env.dataset("copied").volume == "" and ws_env.images_path("copied").exists()
    assert np.array_equal(ws_env.read_slice("byref", 3), data[3])
    at.sidebar.selectbox(key="_dataset_box").set_value("byref").run()
    assert any("by reference" in c.value for c in at.caption)


def test_label_page_shows_a_slice_of_a_referenced_volume(ws_env, page, tmp_path, monkeypatch):
    data = _zarr(tmp_path / "vol.zarr")
    import_dataset(ws_env, "ref", str(tmp_path / "vol.zarr"), by_reference=True)
    ws_env.save_mask("ref", 0, np.ones(data.shape[1:], np.uint8))
    reads = []
    original = Volume.read

    def read(self, z, y, x):
        out = original(self, z, y, x)
        reads.append(out.shape[0])
        return out

    monkeypatch.setattr(Volume, "read", read)
    at = AppTest.from_file(page("label.py"), default_timeout=60).run()
    assert not at.exception and not at.error
    assert at.session_state["dataset"] == "ref"
    assert reads and max(reads) == 1  # slices read one at a time, never the volume
