"""No link inside a volume read by reference is followed (core.data.nolinks): a chunk (or a chunk
folder) replaced after the import by a symbolic link to a secret file is refused, never shown as
pixels, for Zarr (format 2 and 3) and N5."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

from core.data.chunked import open_volume
from core.data.nolinks import LinkInVolume, check_no_links, read_no_links
from core.errors import SegDashError
from core.workflow.ingest import import_dataset

SECRET = bytes(range(256)) * 16  # 4 KB: as many bytes as a 64 x 64 uint8 chunk holds


def _zarr(path: Path, zarr_format: int) -> np.ndarray:
    data = np.random.default_rng(0).integers(1, 255, (4, 64, 64), dtype=np.uint8)
    arr = zarr.create_array(
        str(path), shape=data.shape, chunks=(1, 64, 64), dtype="uint8", zarr_format=zarr_format, compressors=None
    )
    arr[:] = data
    return data


def _chunk(root: Path, z: int, zarr_format: int) -> Path:
    return root / (f"{z}.0.0" if zarr_format == 2 else f"c/{z}/0/0")


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_a_chunk_replaced_by_a_link_after_a_reference_import_is_refused(ws, tmp_path, zarr_format):
    vol = tmp_path / "vol.zarr"
    data = _zarr(vol, zarr_format)
    import_dataset(ws, "ref", str(vol), by_reference=True)
    assert np.array_equal(ws.read_slice("ref", 1), data[1])
    secret = tmp_path / "secret.bin"
    secret.write_bytes(SECRET)  # an uncompressed chunk's size: it would decode as pixels
    chunk = _chunk(vol, 1, zarr_format)
    chunk.unlink()
    chunk.symlink_to(secret)
    with pytest.raises(LinkInVolume, match=r"vol.zarr: .*1.* is a link") as err:
        ws.read_slice("ref", 1)
    assert isinstance(err.value, SegDashError) and "secret" not in str(err.value)
    assert np.array_equal(ws.read_slice("ref", 2), data[2])  # the others still read
    with pytest.raises(LinkInVolume):
        np.asarray(ws.read_images("ref"))


def test_a_chunk_folder_replaced_by_a_link_is_refused(ws, tmp_path):
    vol = tmp_path / "vol.zarr"
    data = _zarr(vol, 3)
    import_dataset(ws, "ref", str(vol), by_reference=True)
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(vol / "c" / "2", elsewhere)
    shutil.rmtree(vol / "c" / "2")
    (vol / "c" / "2").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(LinkInVolume, match=r"c/2/0/0 is a link"):
        ws.read_slice("ref", 2)
    assert np.array_equal(ws.read_slice("ref", 3), data[3])


def test_linked_metadata_is_refused_when_opened(tmp_path):
    vol = tmp_path / "vol.zarr"
    _zarr(vol, 2)
    (tmp_path / "zarray").write_bytes((vol / ".zarray").read_bytes())
    (vol / ".zarray").unlink()
    (vol / ".zarray").symlink_to(tmp_path / "zarray")
    with pytest.raises(SegDashError, match=r"\.zarray is a link"):
        open_volume(vol)


def test_n5_chunk_replaced_by_a_link_is_refused(ws, tmp_path):
    from tests.core.test_volume import write_n5

    data = np.random.default_rng(1).integers(1, 255, (4, 32, 32), dtype=np.uint8)
    n5 = write_n5(tmp_path / "em.n5", data, (1, 32, 32))
    import_dataset(ws, "em", str(n5), by_reference=True)
    assert np.array_equal(ws.read_slice("em", 3), data[3])
    secret = tmp_path / "secret.bin"
    secret.write_bytes((n5 / "0" / "0" / "3").read_bytes())  # a valid block: it would be shown
    (n5 / "0" / "0" / "3").unlink()
    (n5 / "0" / "0" / "3").symlink_to(secret)
    with pytest.raises(LinkInVolume, match=r"em.n5: 0/0/3 is a link"):
        ws.read_slice("em", 3)
    assert np.array_equal(ws.read_slice("em", 0), data[0])
    attrs = n5 / "attributes.json"
    (tmp_path / "attrs.json").write_text(json.dumps(json.loads(attrs.read_text())))
    attrs.unlink()
    attrs.symlink_to(tmp_path / "attrs.json")
    with pytest.raises(SegDashError, match="attributes.json is a link"):
        open_volume(n5)


def test_read_no_links_reads_files_and_refuses_leaving_the_root(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b").write_bytes(b"0123456789")
    assert read_no_links(tmp_path, "a/b") == b"0123456789"
    with pytest.raises(FileNotFoundError):
        read_no_links(tmp_path, "a/missing")
    for key in ("../x", "a/../a/b", ""):
        with pytest.raises(LinkInVolume):
            read_no_links(tmp_path, key)
    os.symlink(tmp_path / "a" / "b", tmp_path / "a" / "c")
    with pytest.raises(LinkInVolume):
        read_no_links(tmp_path, "a/c")
    with pytest.raises(LinkInVolume):
        check_no_links(tmp_path, ["a/b", "a/c"])
    check_no_links(tmp_path, ["a/b", "a/missing/deeper"])  # missing files are no links


def test_a_volume_folder_that_became_a_link_is_refused(ws, tmp_path):
    vol = tmp_path / "vol.zarr"
    data = _zarr(vol, 3)
    import_dataset(ws, "ref", str(vol), by_reference=True)
    other = tmp_path / "other.zarr"  # another volume of the same shape and dtype, someone else's
    _zarr(other, 3)
    zarr.open_array(str(other), mode="r+")[:] = 9
    shutil.rmtree(vol)
    vol.symlink_to(other, target_is_directory=True)
    with pytest.raises(SegDashError, match="is now a link"):
        ws.read_slice("ref", 0)
    vol.unlink()
    shutil.copytree(other, vol)
    zarr.open_array(str(vol), mode="r+")[:] = data
    assert np.array_equal(ws.read_slice("ref", 0), data[0])  # put back: read again
