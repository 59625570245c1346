"""Build a corpus of hostile and malformed import inputs at test time (no binary blobs in the repository).

``build(folder)`` writes every file into ``folder`` and returns the cases: for each, the CLI arguments
of ``python -m core import`` (after ``--name``), and the text its one-line refusal must contain (the
file's name, or ``zip:member`` for a ZIP member). Every case is refused with exit status 2.

The big ones are built without ever holding their decoded size in memory: deflate output of a block
of zeros is computed once (after a full flush the compressor restarts, so the same input gives the
same bytes) and repeated.

Run as a script to write the corpus into a folder and list it::

    python tests/core/hostile_corpus.py /tmp/hostile
"""

from __future__ import annotations

import io
import struct
import sys
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image


@dataclass
class Case:
    """One hostile input: ``images`` (and ``masks``) paths, extra CLI options, what the message names."""

    images: Path
    names: str
    masks: Path | None = None
    options: list[str] = field(default_factory=list)
    also: str = ""  # a second text the message must contain (the option that answers a question)

    def args(self) -> list[str]:
        out = ["--images", str(self.images)]
        if self.masks is not None:
            out += ["--masks", str(self.masks)]
        return out + self.options


# -- PNG -----------------------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header(width: int, height: int, idat: bytes = b"") -> bytes:
    """A gray 8-bit PNG whose header claims ``width`` x ``height`` (the data need not match)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    if not idat:
        idat = zlib.compress(bytes(width + 1))  # one row; a real decoder would fail later, if ever
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def png_of_zeros(side: int, rows_per_block: int = 1000) -> bytes:
    """A valid ``side`` x ``side`` all-zero gray PNG, built in O(one block) memory (~1000-fold smaller)."""
    row = bytes(side + 1)  # filter byte + pixels
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = comp.compress(row * rows_per_block) + comp.flush(zlib.Z_FULL_FLUSH)
    n_blocks, rest = divmod(side, rows_per_block)
    tail_comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    tail = tail_comp.compress(row * rest) + tail_comp.flush(zlib.Z_FINISH)
    adler = 1
    chunk = row * rows_per_block
    for _ in range(n_blocks):
        adler = zlib.adler32(chunk, adler)
    adler = zlib.adler32(row * rest, adler)
    stream = b"\x78\xda" + block * n_blocks + tail + struct.pack(">I", adler & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", stream) + _chunk(b"IEND", b"")


# -- TIFF and JPEG --------------------------------------------------------------------------------


def tiff_header(width: int, height: int) -> bytes:
    """A little-endian deflate-compressed gray TIFF claiming ``width`` x ``height`` with one tiny strip."""
    strip = zlib.compress(bytes(64))
    tags = [
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 1, 8),
        (259, 3, 1, 8),
        (262, 3, 1, 1),
        (273, 4, 1, 0),
        (277, 3, 1, 1),
        (278, 4, 1, height),
        (279, 4, 1, len(strip)),
    ]
    ifd_offset = 8
    data_offset = ifd_offset + 2 + 12 * len(tags) + 4
    entries = b""
    for tag, typ, count, value in tags:
        if tag == 273:
            value = data_offset
        packed = struct.pack("<H", value) + b"\0\0" if typ == 3 else struct.pack("<I", value)
        entries += struct.pack("<HHI", tag, typ, count) + packed
    return (
        b"II*\0" + struct.pack("<I", ifd_offset) + struct.pack("<H", len(tags)) + entries + struct.pack("<I", 0) + strip
    )


def jpeg_header(width: int, height: int) -> bytes:
    """A small JPEG whose frame header is patched to claim ``width`` x ``height``."""
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def truncated_tiff(slices: int = 4, side: int = 512) -> bytes:
    """An uncompressed multipage TIFF cut to a third of its length."""
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.full((slices, side, side), 7, np.uint8), photometric="minisblack")
    data = buf.getvalue()
    return data[: len(data) // 3]


# -- ZIP ------------------------------------------------------------------------------------------


def zip_of_zeros(path: Path, members: int = 150, size: int = 9_900_000, suffix: str = ".tif") -> Path:
    """A ZIP of ``members`` deflated members of ``size`` zero bytes each, written without inflating them.

    Each member is under the per-member ratio check on its own (``size`` < 10 MB); together they
    expand about 1000-fold (150 x 9.9 MB = 1.5 GB from a 1.5 MB file).
    """
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = comp.compress(bytes(size)) + comp.flush()
    crc = zlib.crc32(bytes(size)) & 0xFFFFFFFF
    out = io.BytesIO()
    central = b""
    for i in range(members):
        name = f"zeros{i:03d}{suffix}".encode()
        offset = out.tell()
        out.write(
            struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(packed), size, len(name), 0)
            + name
            + packed
        )
        central += (
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                20,
                20,
                0,
                8,
                0,
                0,
                crc,
                len(packed),
                size,
                len(name),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + name
        )
    cd_offset = out.tell()
    out.write(central + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, members, members, len(central), cd_offset, 0))
    path.write_bytes(out.getvalue())
    return path


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _tif(path: Path, arr: np.ndarray, **kwargs) -> Path:
    kwargs = {"photometric": "minisblack"} | kwargs
    tifffile.imwrite(path, arr, **{k: v for k, v in kwargs.items() if v is not None})
    return path


# -- the corpus -----------------------------------------------------------------------------------


def build(folder: Path) -> dict[str, Case]:
    """Write every hostile input into ``folder``; return the cases by name."""
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    cases: dict[str, Case] = {}

    cases["zip-many-zeros"] = Case(zip_of_zeros(d / "zeros.zip"), "zeros.zip")
    (d / "huge.png").write_bytes(png_header(200_000, 200_000))
    cases["png-header-200000"] = Case(d / "huge.png", "huge.png")
    (d / "flat.png").write_bytes(png_of_zeros(30_000))
    cases["png-30000-zeros"] = Case(d / "flat.png", "flat.png")
    (d / "wide.tif").write_bytes(tiff_header(100_000, 100_000))
    cases["tiff-header-100000"] = Case(d / "wide.tif", "wide.tif")
    (d / "tall.jpg").write_bytes(jpeg_header(65_000, 65_000))
    cases["jpeg-header-65000"] = Case(d / "tall.jpg", "tall.jpg")
    cases["zip-member-png-bomb"] = Case(
        _zip(d / "bombs.zip", {"a/huge.png": png_header(200_000, 200_000)}), "bombs.zip:a/huge.png"
    )
    cases["zip-member-tiff-bomb"] = Case(
        _zip(d / "tbomb.zip", {"wide.tif": tiff_header(100_000, 100_000)}), "tbomb.zip:wide.tif"
    )

    cut = truncated_tiff()
    cases["zip-member-truncated-tiff"] = Case(_zip(d / "cut.zip", {"stack.tif": cut}), "cut.zip:stack.tif")
    (d / "cutdir").mkdir(exist_ok=True)
    (d / "cutdir" / "a.tif").write_bytes(cut)
    _tif(d / "cutdir" / "b.tif", np.zeros((4, 512, 512), np.uint8))
    cases["folder-truncated-tiff"] = Case(d / "cutdir", "a.tif")
    (d / "cut.tif").write_bytes(cut)
    cases["truncated-tiff"] = Case(d / "cut.tif", "cut.tif")
    (d / "notes.png").write_text("these are my notes, not an image\n")
    cases["text-as-png"] = Case(d / "notes.png", "notes.png", also="not a valid PNG image")
    (d / "zero.tif").write_bytes(b"")
    cases["empty-tiff"] = Case(d / "zero.tif", "zero.tif")
    cases["empty-zip"] = Case(_zip(d / "empty.zip", {}), "empty.zip")
    cases["zip-of-text"] = Case(_zip(d / "text.zip", {"readme.txt": b"hello"}), "text.zip")
    (d / "fake.zip").write_bytes(b"PK\x03\x04 not really a zip")
    cases["not-a-zip"] = Case(d / "fake.zip", "fake.zip")
    cases["zip-unsafe-name"] = Case(_zip(d / "evil.zip", {"../../etc/x.png": b"x"}), "evil.zip")

    # data sanity: each a question answered by an option, named in the message
    rng = np.random.default_rng(0)
    img = _tif(d / "em.tif", rng.integers(0, 4000, (3, 32, 32), dtype=np.uint16))
    gapped = np.zeros((3, 32, 32), np.uint8)
    gapped[:, 2:12, 2:12], gapped[:, 14:20, 14:20], gapped[:, 22:30, 22:30] = 1, 2, 7
    cases["mask-gapped-values"] = Case(img, "gapped.tif", _tif(d / "gapped.tif", gapped), also="--remap-classes")
    three = np.zeros((3, 32, 32), np.uint8)
    three[:, 2:12, 2:12], three[:, 14:20, 14:20] = 1, 2
    cases["threshold-merges-classes"] = Case(
        img, "three.tif", _tif(d / "three.tif", three), ["--mask-threshold", "0.5"], also="--merge-classes"
    )
    cases["too-many-class-names"] = Case(
        img, "three.tif", d / "three.tif", ["--classes", "bg,a,b,c,d"], also="--classes"
    )
    binary = (rng.random((3, 32, 32)) > 0.5).astype(np.uint8) * 255
    cases["images-look-like-masks"] = Case(
        _tif(d / "binary.tif", binary), "binary.tif", img, also="--images-are-binary"
    )
    planar = _tif(
        d / "planar.tif", rng.integers(0, 255, (3, 32, 32), dtype=np.uint8), photometric="rgb", planarconfig="separate"
    )
    cases["planar-rgb-or-stack"] = Case(planar, "planar.tif", also="--as-stack")

    # every page of a TIFF is read, or the import says why not
    with tifffile.TiffWriter(d / "series.tif") as tif:  # a stack and a thumbnail: which one?
        tif.write(rng.integers(0, 255, (4, 32, 32), dtype=np.uint8), photometric="minisblack")
        tif.write(np.zeros((8, 8), np.uint16))
    cases["tiff-several-series"] = Case(d / "series.tif", "series.tif", also="--series")
    single = _tif(d / "singleton.tif", rng.random((5, 100, 1)).astype(np.float32), photometric=None)
    cases["tiff-trailing-axis-of-one"] = Case(single, "singleton.tif", also="--as-image")
    nan = _tif(d / "nan.tif", np.full((3, 32, 32), np.nan, np.float32))
    cases["tiff-all-nan"] = Case(nan, "nan.tif", also="no number")

    # a link inside a Zarr to a file outside it: refused, never read as pixels
    import zarr

    linked = d / "linked.zarr"
    if not linked.exists():
        zarr.create_array(str(linked), shape=(2, 32, 32), chunks=(1, 32, 32), dtype="uint8", compressors=None)[:] = 1
        (d / "secret.bin").write_bytes(bytes(range(256)) * 4)
        (linked / "c" / "1" / "0" / "0").unlink()
        (linked / "c" / "1" / "0" / "0").symlink_to(d / "secret.bin")
    cases["zarr-linked-chunk"] = Case(linked, "linked.zarr", also="c/1/0/0 is a link")
    return cases


def page_by_page(path: Path, pages: int = 20, side: int = 64) -> Path:
    """A stack written a page at a time (``contiguous=False``): each page a series of its own."""
    rng = np.random.default_rng(1)
    with tifffile.TiffWriter(path) as tif:
        for _ in range(pages):
            tif.write(rng.integers(0, 255, (side, side), dtype=np.uint8), contiguous=False)
    return path


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "hostile")
    for key, case in build(target).items():
        print(f"{key:28s} {' '.join(case.args())}")
