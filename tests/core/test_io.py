"""core.data.io: every reader and format, natural order, memory mapping, refusals, atomic writes."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from core.data.io import ChannelChoiceNeeded, atomic_write, natural_key, read_stack, write_png, write_tiff


def _png(path: Path, arr: np.ndarray, mode: str | None = None) -> Path:
    Image.fromarray(arr, mode=mode).save(path) if mode else Image.fromarray(arr).save(path)
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_natural_order_of_files(tmp_path, rng):
    for i in (10, 2, 1):
        _png(tmp_path / f"slice{i}.png", np.full((4, 5), i, np.uint8))
    stack = read_stack(tmp_path)
    assert stack.names == ["slice1", "slice2", "slice10"]
    assert stack.data[:, 0, 0].tolist() == [1, 2, 10]
    assert sorted(["a10", "a9", "A1"], key=natural_key) == ["A1", "a9", "a10"]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_multipage_tiff_keeps_dtype(tmp_path, rng, dtype):
    data = (rng.random((3, 16, 20)) * 1000).astype(dtype)
    tifffile.imwrite(tmp_path / "s.tif", data, photometric="minisblack")
    stack = read_stack(tmp_path / "s.tif")
    assert stack.data.dtype == dtype
    assert stack.shape == (3, 16, 20)
    np.testing.assert_array_equal(np.asarray(stack.data), data)
    assert stack.names == [None, None, None] and stack.from_single_stack


def test_rgb_tiff_stack_becomes_gray(tmp_path, rng):
    data = rng.integers(0, 255, (2, 6, 7, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", data, photometric="rgb")
    stack = read_stack(tmp_path / "rgb.tif")
    assert stack.shape == (2, 6, 7)
    assert any("grayscale" in n for n in stack.notices)
    assert read_stack(tmp_path / "rgb.tif", channel=2).data[1].tolist() == data[1, ..., 2].tolist()


def test_single_2d_tiff_is_one_slice(tmp_path):
    tifffile.imwrite(tmp_path / "one.tiff", np.arange(12, dtype=np.uint16).reshape(3, 4))
    stack = read_stack(tmp_path / "one.tiff")
    assert stack.shape == (1, 3, 4)


def test_uncompressed_tiff_is_memory_mapped(tmp_path):
    data = np.zeros((4, 64, 64), np.uint16)
    tifffile.imwrite(tmp_path / "big.tif", data, photometric="minisblack")
    stack = read_stack(tmp_path / "big.tif")
    assert isinstance(stack.data, np.memmap)
    compressed = tmp_path / "c.tif"
    tifffile.imwrite(compressed, data, compression="zlib", photometric="minisblack")
    assert not isinstance(read_stack(compressed).data, np.memmap)


def test_large_tiff_opens_without_reading_it(tmp_path):
    """A 256 MB stack opens with little memory: only the header is read."""
    import psutil

    path = tmp_path / "large.tif"
    arr = tifffile.memmap(path, shape=(64, 2048, 2048), dtype=np.uint8)
    arr[:, ::512, ::512] = 7
    arr.flush()
    del arr
    proc = psutil.Process()
    before = proc.memory_info().rss
    stack = read_stack(path)
    assert stack.shape == (64, 2048, 2048)
    assert int(stack.data[63, 1024, 1024]) == 7
    grown = proc.memory_info().rss - before
    assert grown < 64 * 1024**2, f"opening grew RSS by {grown / 1e6:.0f} MB"


def test_rgb_png_becomes_gray_with_notice(tmp_path, rng):
    rgb = rng.integers(0, 255, (8, 9, 3), dtype=np.uint8)
    _png(tmp_path / "c.png", rgb)
    stack = read_stack(tmp_path / "c.png")
    assert stack.shape == (1, 8, 9) and stack.data.dtype == np.uint8
    assert any("grayscale" in n for n in stack.notices)
    expected = np.rint(rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))
    np.testing.assert_allclose(stack.data[0], expected, atol=1)


def test_rgba_and_gray_rgb(tmp_path):
    gray3 = np.repeat(np.arange(20, dtype=np.uint8).reshape(4, 5)[..., None], 3, axis=2)
    _png(tmp_path / "g.png", gray3)
    stack = read_stack(tmp_path / "g.png")
    assert stack.notices == []  # identical channels: plain gray, nothing to tell
    np.testing.assert_array_equal(stack.data[0], gray3[..., 0])
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 255
    _png(tmp_path / "a.png", rgba)
    assert read_stack(tmp_path / "a.png").shape == (1, 4, 5)


def test_16bit_png(tmp_path):
    arr = np.array([[0, 1000], [40000, 65535]], np.uint16)
    Image.fromarray(arr).save(tmp_path / "d.png")
    stack = read_stack(tmp_path / "d.png")
    assert stack.data.dtype == np.uint16
    np.testing.assert_array_equal(stack.data[0], arr)


def test_jpeg_and_bmp(tmp_path):
    arr = np.full((8, 8), 128, np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.jpg", quality=95)
    Image.fromarray(arr).save(tmp_path / "b.bmp")
    stack = read_stack(tmp_path)
    assert stack.names == ["a", "b"] and stack.shape == (2, 8, 8)


def test_hyperstack_needs_a_channel(tmp_path, rng):
    data = rng.integers(0, 255, (3, 2, 10, 12), dtype=np.uint8)  # Z, C, Y, X
    tifffile.imwrite(tmp_path / "h.tif", data, imagej=True, metadata={"axes": "ZCYX"})
    with pytest.raises(ChannelChoiceNeeded) as err:
        read_stack(tmp_path / "h.tif")
    assert err.value.n_channels == 2
    stack = read_stack(tmp_path / "h.tif", channel=1)
    assert stack.shape == (3, 10, 12)
    np.testing.assert_array_equal(np.asarray(stack.data), data[:, 1])
    with pytest.raises(ValueError, match="out of range"):
        read_stack(tmp_path / "h.tif", channel=5)


def test_ome_like_time_and_z_are_flattened(tmp_path):
    data = np.arange(2 * 3 * 4 * 5, dtype=np.uint16).reshape(2, 3, 4, 5)
    tifffile.imwrite(tmp_path / "tz.tif", data, imagej=True, metadata={"axes": "TZYX"})
    stack = read_stack(tmp_path / "tz.tif")
    assert stack.shape == (6, 4, 5)
    assert any("flattened" in n for n in stack.notices)


def test_zip_of_images_and_uploaded_bytes(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in (11, 3):
            b = io.BytesIO()
            Image.fromarray(np.full((5, 5), i, np.uint8)).save(b, format="PNG")
            zf.writestr(f"dir/img{i}.png", b.getvalue())
        zf.writestr("readme.txt", "not an image")
        zf.writestr("__MACOSX/dir/._img3.png", b"junk")
    stack = read_stack(("upload.zip", buf.getvalue()))
    assert stack.names == ["img3", "img11"]

    class Upload(io.BytesIO):  # what Streamlit's UploadedFile looks like
        name = "upload.zip"

    assert read_stack(Upload(buf.getvalue())).shape == (2, 5, 5)


@pytest.mark.parametrize("member", ["../evil.png", "/abs/evil.png", "a/../../evil.png", "C:/evil.png"])
def test_zip_with_unsafe_names_is_refused(member):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(member, b"x")
    with pytest.raises(ValueError, match="unsafe member name"):
        read_stack(("bad.zip", buf.getvalue()))


def test_zip_bomb_is_refused(monkeypatch):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.tif", b"\0" * 30_000_000)
    with pytest.raises(ValueError, match="ZIP bomb"):
        read_stack(("bomb.zip", buf.getvalue()))
    monkeypatch.setattr("core.data.zips.ZIP_MAX_BYTES", 1000)
    small = io.BytesIO()
    with zipfile.ZipFile(small, "w") as zf:
        zf.writestr("a.png", b"\1" * 2000)
    with pytest.raises(ValueError, match="exceeds the limit"):
        read_stack(("big.zip", small.getvalue()))
    monkeypatch.setattr("core.data.zips.ZIP_MAX_MEMBERS", 2)
    many = io.BytesIO()
    with zipfile.ZipFile(many, "w") as zf:
        for i in range(3):
            zf.writestr(f"{i}.png", b"x")
    with pytest.raises(ValueError, match="exceed the limit"):
        read_stack(("many.zip", many.getvalue()))


def test_corrupt_and_truncated_files_name_the_file(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ValueError, match="bad.png"):
        read_stack(tmp_path / "bad.png")
    tifffile.imwrite(tmp_path / "t.tif", np.zeros((4, 64, 64), np.uint8), compression="zlib", photometric="minisblack")
    data = (tmp_path / "t.tif").read_bytes()
    (tmp_path / "trunc.tif").write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match="trunc.tif"):
        read_stack(tmp_path / "trunc.tif")
    tifffile.imwrite(tmp_path / "u.tif", np.zeros((4, 64, 64), np.uint8), photometric="minisblack")
    data = (tmp_path / "u.tif").read_bytes()
    (tmp_path / "utrunc.tif").write_bytes(data[: len(data) - 5000])
    with pytest.raises(ValueError, match="utrunc.tif.*truncated"):
        read_stack(tmp_path / "utrunc.tif")
    (tmp_path / "notzip.zip").write_bytes(b"PK not really")
    with pytest.raises(ValueError, match="notzip.zip"):
        read_stack(tmp_path / "notzip.zip")
    with pytest.raises(ValueError, match="not an accepted image type"):
        read_stack(("notes.txt", b"hello"))


def test_slices_of_different_shapes_are_refused(tmp_path):
    _png(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    _png(tmp_path / "b.png", np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError, match=r"a.png is 4x4.*b.png is 4x5"):
        read_stack(tmp_path)


def test_empty_folder_and_missing_path(tmp_path):
    with pytest.raises(ValueError, match="no images found"):
        read_stack(tmp_path)
    with pytest.raises(ValueError, match="no such file"):
        read_stack(tmp_path / "nope.tif")


def test_write_read_round_trips(tmp_path, rng):
    stack = rng.integers(0, 65535, (3, 7, 9), dtype=np.uint16)
    write_tiff(tmp_path / "r.tif", stack)  # write_tiff always writes gray pages, never RGB
    np.testing.assert_array_equal(np.asarray(read_stack(tmp_path / "r.tif").data), stack)
    write_tiff(tmp_path / "it.tif", iter(stack), shape=stack.shape, dtype=stack.dtype)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "it.tif"), stack)
    mask = rng.integers(0, 3, (7, 9), dtype=np.uint8)
    write_png(tmp_path / "m.png", mask)
    np.testing.assert_array_equal(read_stack(tmp_path / "m.png").data[0], mask)


def test_atomic_write_leaves_old_file_on_error(tmp_path):
    target = tmp_path / "keep.bin"
    target.write_bytes(b"old")

    def fail(fh):
        fh.write(b"partial")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write(target, fail)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.bin"]


def test_big_endian_tiff(tmp_path):
    data = np.arange(24, dtype=">u2").reshape(2, 3, 4)
    tifffile.imwrite(tmp_path / "be.tif", data, byteorder=">", photometric="minisblack")
    stack = read_stack(tmp_path / "be.tif")
    assert stack.data.dtype == np.uint16 and stack.data.dtype.isnative
    np.testing.assert_array_equal(np.asarray(stack.data), data.astype(np.uint16))


def test_float64_becomes_float32_with_notice(tmp_path):
    tifffile.imwrite(tmp_path / "f.tif", np.ones((2, 3, 3), np.float64), photometric="minisblack")
    stack = read_stack(tmp_path / "f.tif")
    assert stack.data.dtype == np.float32 and any("float32" in n for n in stack.notices)


def test_file_names_must_be_unique(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _png(tmp_path / "a" / "x.png", np.zeros((2, 2), np.uint8))
    _png(tmp_path / "b" / "x.png", np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="same name"):
        read_stack(tmp_path)


def test_env_override_of_zip_limit_is_read_at_import():
    import core.data.io

    assert core.data.io.ZIP_MAX_BYTES == int(os.environ.get("SEGDASH_ZIP_MAX_BYTES", 8 * 1024**3))


# -- hostile input (issue 10, points 4-7) ------------------------------------------------------


class _Upload(io.BytesIO):
    """What Streamlit's UploadedFile looks like: bytes with a ``name``."""

    def __init__(self, name: str, data: bytes):
        super().__init__(data)
        self.name = name


def test_image_size_is_checked_against_the_memory_budget_before_decoding(tmp_path, monkeypatch):
    _png(tmp_path / "big.png", np.random.default_rng(0).integers(0, 255, (600, 700), dtype=np.uint8))
    assert read_stack(tmp_path / "big.png").shape == (1, 600, 700)
    monkeypatch.setenv("SEGDASH_IMPORT_MEMORY", "100000")
    decoded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(1))
    with pytest.raises(ValueError, match=r"big.png: a 700 x 600 image needs .* SEGDASH_IMPORT_MEMORY"):
        read_stack(tmp_path / "big.png")
    assert decoded == []  # refused from the header


def test_tiff_pages_are_checked_before_reading(tmp_path, monkeypatch):
    tifffile.imwrite(
        tmp_path / "z.tif", np.ones((4, 300, 300), np.uint16), compression="zlib", photometric="minisblack"
    )
    monkeypatch.setenv("SEGDASH_IMPORT_MEMORY", "100000")
    monkeypatch.setattr(tifffile.TiffPageSeries, "asarray", lambda *a, **k: pytest.fail("read before the check"))
    with pytest.raises(ValueError, match=r"z.tif: a 4 x 300 x 300 uint16 TIFF needs"):
        read_stack(("z.tif", (tmp_path / "z.tif").read_bytes()))


def test_decompression_bomb_error_of_pil_names_the_file():
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 200_000, 200_000, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\0" * 10))
        + chunk(b"IEND", b"")
    )
    with pytest.raises(ValueError, match=r"^huge.png: its header claims 40,000 megapixels.*bomb"):
        read_stack([_Upload("huge.png", png)])


def test_zip_members_are_not_decompressed_until_read(monkeypatch):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(3):
            b = io.BytesIO()
            Image.fromarray(np.full((5, 5), i, np.uint8)).save(b, format="PNG")
            zf.writestr(f"s{i}.png", b.getvalue())
    reads = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(
        zipfile.ZipFile, "open", lambda self, m, *a, **k: reads.append(m) or real_open(self, m, *a, **k)
    )
    from core.data.io import _expand

    items = list(_expand(("z.zip", buf.getvalue())))
    assert [n for n, _ in items] == ["z.zip:s0.png", "z.zip:s1.png", "z.zip:s2.png"] and reads == []
    assert read_stack(("z.zip", buf.getvalue())).shape == (3, 5, 5) and len(reads) == 3


def test_zip_whose_members_together_expand_too_far_is_refused_from_its_directory():
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import tempfile

    from hostile_corpus import zip_of_zeros

    with tempfile.TemporaryDirectory() as d:
        path = zip_of_zeros(Path(d) / "zeros.zip", members=60)  # 60 x 9.9 MB of zeros, each under the member check
        with pytest.raises(ValueError, match=r"^zeros.zip: .*refused as a ZIP bomb"):
            read_stack(path)


def test_bytes_messages_name_the_file_and_hold_no_bytes(tmp_path):
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.full((4, 512, 512), 7, np.uint8), photometric="minisblack")
    cut = buf.getvalue()[: len(buf.getvalue()) // 3]
    for source, name in [(("cut.tif", cut), "cut.tif"), ([_Upload("cut.tif", cut)], "cut.tif")]:
        with pytest.raises(ValueError, match=f"^{name}: .*truncated"):
            read_stack(source)
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        zf.writestr("d/cut.tif", cut)
    with pytest.raises(ValueError, match=r"^z.zip:d/cut.tif: .*truncated"):
        read_stack([_Upload("z.zip", zbuf.getvalue())])
    with pytest.raises(ValueError) as err:
        read_stack([_Upload("photo.png", b"my notes, typed in a text editor\n")])
    assert str(err.value).startswith("photo.png: not a valid PNG image") and "BytesIO" not in str(err.value)
    png = io.BytesIO()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(png, format="PNG")
    with pytest.raises(ValueError) as err:
        read_stack([_Upload("stack.tif", png.getvalue())])  # PNG bytes named .tif: tifffile quotes them
    assert str(err.value).startswith("stack.tif: ") and "b'" not in str(err.value) and "PNG" not in str(err.value)
    empty = io.BytesIO()
    zipfile.ZipFile(empty, "w").close()
    with pytest.raises(ValueError, match=r"^empty.zip: it holds no images"):
        read_stack([_Upload("empty.zip", empty.getvalue())])


def test_planar_rgb_tiff_offers_both_readings(tmp_path):
    from core.data.io import StackOrColourNeeded

    data = np.random.default_rng(0).integers(0, 255, (3, 6, 7), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "p.tif", data, photometric="rgb", planarconfig="separate")
    with pytest.raises(StackOrColourNeeded, match=r"p.tif: its 3 planes") as err:
        read_stack(tmp_path / "p.tif")
    assert err.value.n_planes == 3
    as_stack = read_stack(tmp_path / "p.tif", as_stack=True)
    assert as_stack.shape == (3, 6, 7) and np.array_equal(as_stack.data, data) and not as_stack.notices
    colour = read_stack(tmp_path / "p.tif", as_stack=False)
    assert colour.shape == (1, 6, 7) and "grayscale" in colour.notices[0]
    rgb = np.zeros((6, 7, 3), np.uint8)  # contiguous RGB is a colour image, no question
    tifffile.imwrite(tmp_path / "c.tif", rgb, photometric="rgb")
    assert read_stack(tmp_path / "c.tif").shape == (1, 6, 7)


def test_import_roots_resolve_links_and_dots(tmp_path):
    from core.data.io import check_import_path

    root, outside = tmp_path / "root", tmp_path / "secret"
    root.mkdir(), outside.mkdir()
    _png(outside / "s.png", np.zeros((4, 4), np.uint8))
    _png(root / "ok.png", np.zeros((4, 4), np.uint8))
    (root / "link.png").symlink_to(outside / "s.png")
    (root / "dirlink").symlink_to(outside)
    assert check_import_path(root / "ok.png", [root]) == (root / "ok.png").resolve()
    messages = set()
    for p in [
        outside / "s.png",
        outside / "missing.png",
        root / "link.png",
        root / ".." / "secret" / "s.png",
        root / "dirlink" / "s.png",
        "/etc/passwd",
    ]:
        with pytest.raises(ValueError) as err:
            check_import_path(p, [root])
        messages.add(str(err.value))
    assert len(messages) == 1 and "s.png" not in messages.pop()
    with pytest.raises(ValueError, match="outside the folders"):  # a link inside a folder
        read_stack(root, roots=[root])
    (root / "link.png").unlink()
    (root / "dirlink").unlink()
    assert read_stack(root, roots=[root]).shape == (1, 4, 4)


def _page_by_page(path: Path, pages: list[np.ndarray], **kwargs) -> Path:
    """A TIFF written a page at a time (each page a series of its own, as tifffile writes them)."""
    with tifffile.TiffWriter(path) as tif:
        for page in pages:
            tif.write(page, contiguous=False, **kwargs)
    return path


def test_a_tiff_written_page_by_page_is_read_whole_and_memory_mapped(tmp_path, rng, monkeypatch):
    pages = [rng.integers(0, 65535, (40, 30), dtype=np.uint16) for _ in range(20)]
    path = _page_by_page(tmp_path / "pages.tif", pages)
    with tifffile.TiffFile(path) as tif:
        assert len(tif.series) == 20  # the case that read as one slice
    monkeypatch.setenv("SEGDASH_IMPORT_MEMORY", "1000")  # far less than the stack: it must not be read
    stack = read_stack(path)
    assert stack.shape == (20, 40, 30) and np.array_equal(stack.data, np.stack(pages))
    assert stack.names == [None] * 20 and "20 pages" in stack.notices[0]
    base = stack.data
    while not isinstance(base, np.memmap):
        base = base.base
    assert not stack.data.flags.writeable
    zlib_path = _page_by_page(tmp_path / "zpages.tif", pages[:5], compression="zlib")
    monkeypatch.delenv("SEGDASH_IMPORT_MEMORY")
    assert np.array_equal(read_stack(zlib_path).data, np.stack(pages[:5]))  # compressed: read page by page


def test_a_tiff_of_several_series_asks_which(tmp_path, rng):
    from core.data.io import SeriesChoiceNeeded

    big, thumb = rng.integers(0, 255, (4, 32, 32), dtype=np.uint8), np.zeros((8, 8), np.uint16)
    with tifffile.TiffWriter(tmp_path / "two.tif") as tif:
        tif.write(big, photometric="minisblack")
        tif.write(thumb)
    with pytest.raises(SeriesChoiceNeeded, match=r"two.tif: holds 2 image series .*4 x 32 x 32 uint8.*8 x 8") as err:
        read_stack(tmp_path / "two.tif")
    assert err.value.n_series == 2
    first = read_stack(tmp_path / "two.tif", series=0)
    assert first.shape == (4, 32, 32) and np.array_equal(first.data, big) and "series 0 of 2" in first.notices[0]
    assert read_stack(tmp_path / "two.tif", series=1).shape == (1, 8, 8)
    with pytest.raises(ValueError, match="series 2 out of range 0..1"):
        read_stack(tmp_path / "two.tif", series=2)


def test_a_trailing_axis_of_one_is_a_question_unless_the_axes_say(tmp_path, rng):
    from core.data.io import SingletonAxisNeeded, StackOrColourNeeded

    data = rng.random((5, 100, 1)).astype(np.float32)
    tifffile.imwrite(tmp_path / "s.tif", data)  # tifffile stores one 5 x 100 page
    with pytest.raises(SingletonAxisNeeded, match=r"s.tif: its array of shape \(5, 100, 1\)") as err:
        read_stack(tmp_path / "s.tif")
    assert isinstance(err.value, StackOrColourNeeded)  # answered the same way: as_stack
    assert "5 slices of 100 x 1" in str(err.value) and "one 5 x 100 image" in str(err.value)
    slices = read_stack(tmp_path / "s.tif", as_stack=True)
    assert slices.shape == (5, 100, 1) and np.array_equal(slices.data, data)
    image = read_stack(tmp_path / "s.tif", as_stack=False)
    assert image.shape == (1, 5, 100) and np.array_equal(image.data[0], data[..., 0])
    tifffile.imwrite(tmp_path / "zyx.tif", data, metadata={"axes": "ZYX"})  # the axes say: no question
    assert read_stack(tmp_path / "zyx.tif").shape == (5, 100, 1)
    tifffile.imwrite(tmp_path / "lead.tif", data.reshape(1, 5, 100))  # a leading axis of one: one reading
    assert read_stack(tmp_path / "lead.tif").shape == (1, 5, 100)
