"""Hostile model files, built at test time (no binary blobs in the repository): a ZIP whose one member
expands from about a megabyte to gigabytes of zeros, and a TorchScript module that overwrites a file.

The big members are written without ever holding their decoded size in memory: the deflate output of a
block of zeros is computed once (after a full flush the compressor restarts, so the same input gives
the same bytes) and repeated, as ``hostile_corpus.py`` does for images.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import torch
from torch import nn

_BLOCK = 16 * 1024**2


def _deflated_zeros(size: int) -> tuple[bytes, int]:
    """(raw deflate stream of ``size`` zero bytes, its CRC-32), in O(one block) memory."""
    n_blocks, rest = divmod(size, _BLOCK)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = comp.compress(bytes(_BLOCK)) + comp.flush(zlib.Z_FULL_FLUSH)
    tail_comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    tail = tail_comp.compress(bytes(rest)) + tail_comp.flush(zlib.Z_FINISH)
    crc = 0
    zeros = bytes(_BLOCK)
    for _ in range(n_blocks):
        crc = zlib.crc32(zeros, crc)
    crc = zlib.crc32(bytes(rest), crc) & 0xFFFFFFFF
    return block * n_blocks + tail, crc


def zip_with_zeros(path: Path, members: dict[str, bytes], big: str, size: int) -> Path:
    """A ZIP of ``members`` (deflated) and the member ``big``: ``size`` zero bytes, deflated about
    1000-fold (1 GiB in about 1 MB). Members keep the order given, ``big`` in ``members``' place when
    named there, else last."""
    order = list(members) + ([big] if big not in members else [])
    out = bytearray()
    central = b""
    for name in order:
        if name == big:
            packed, crc = _deflated_zeros(size)
            n = size
        else:
            data = members[name]
            comp = zlib.compressobj(6, zlib.DEFLATED, -15)
            packed, crc, n = comp.compress(data) + comp.flush(), zlib.crc32(data) & 0xFFFFFFFF, len(data)
        raw = name.encode()
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(packed), n, len(raw), 0) + raw
        out += packed
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
                n,
                len(raw),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + raw
        )
    cd_offset = len(out)
    count = len(order)
    out += central + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), cd_offset, 0)
    path.write_bytes(bytes(out))
    return path


class FileWriter(nn.Module):
    """Outputs two-class probabilities like a SegDash package's TorchScript, and overwrites the first
    bytes of ``victim`` with ``X`` each time it runs (``torch.from_file`` maps the file shared)."""

    def __init__(self, victim: str):
        super().__init__()
        self.victim = victim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        written = torch.from_file(self.victim, True, 8, dtype=torch.uint8)
        written.fill_(88)
        p = torch.sigmoid(x) + 0.0 * written.sum().float()
        return torch.cat([1.0 - p, p], dim=1)


def file_writing_torchscript(victim: Path, out: Path) -> bytes:
    """The bytes of a TorchScript file whose ``forward`` overwrites ``victim``."""
    torch.jit.script(FileWriter(str(victim))).save(str(out))
    return out.read_bytes()
