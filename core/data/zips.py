"""ZIP archives as image sources: member names checked, member count, total size and expansion
ratios capped from the central directory before anything is decompressed (:data:`ZIP_MAX_MEMBERS`,
:data:`ZIP_MAX_BYTES`, from ``SEGDASH_ZIP_MAX_MEMBERS`` / ``SEGDASH_ZIP_MAX_BYTES``); members are
decompressed one at a time, when their turn comes."""

from __future__ import annotations

import io
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

from ..errors import SegDashError
from .limits import _ZIP_MAX_RATIO, IMAGE_SUFFIXES, _gb, _reason, memory_budget

__all__ = ["ZipFolder", "ZIP_MAX_BYTES", "ZIP_MAX_MEMBERS", "check_member_name"]

ZIP_MAX_BYTES = int(os.environ.get("SEGDASH_ZIP_MAX_BYTES", 8 * 1024**3))
ZIP_MAX_MEMBERS = int(os.environ.get("SEGDASH_ZIP_MAX_MEMBERS", 20_000))
_ZIP_TOTAL_RATIO = 500  # the same for a whole ZIP above _ZIP_BOMB_TOTAL bytes uncompressed
_ZIP_BOMB_TOTAL = 512 * 1024**2


@dataclass(frozen=True)
class ZipFolder:
    """The members under ``folder/`` of a ZIP given as a path or a ``(name, bytes)`` pair.

    :func:`read_stack` reads them one at a time, with the whole ZIP's safety checks.
    """

    zip: Any
    folder: str


class _ZipSource:
    """A ZIP (path or bytes) opened once, on the first member read, and shared by its members."""

    def __init__(self, zip_name: str, src: Path | bytes):
        self.zip_name, self.src = zip_name, src
        self._zf: zipfile.ZipFile | None = None

    def open(self, info: zipfile.ZipInfo):
        if self._zf is None:
            self._zf = _open_zip(self.zip_name, self.src)
        return self._zf.open(info)

    def __del__(self) -> None:
        if self._zf is not None:
            self._zf.close()


@dataclass(frozen=True)
class _Member:
    """One member of a ZIP, decompressed only by :meth:`read` (one at a time, never all at once)."""

    source: _ZipSource
    info: zipfile.ZipInfo

    def read(self) -> bytes:
        with self.source.open(self.info) as src:
            data = src.read(self.info.file_size + 1)  # never trust the header beyond its own claim
        if len(data) > self.info.file_size:
            raise SegDashError(f"{self.source.zip_name}:{self.info.filename}: larger than the ZIP's header says")
        return data


def _open_zip(zip_name: str, src: Path | bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(src if isinstance(src, Path) else io.BytesIO(src))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise SegDashError(f"{zip_name}: not a readable ZIP file ({_reason(exc)})") from None


def _expand_zip(zip_name: str, src: Path | bytes, folder: str | None = None) -> Iterable[tuple[str, Any]]:
    """Check a ZIP from its central directory (names, sizes, ratios), then yield its image members.

    Nothing is decompressed here: each member is a :class:`_Member` read when its turn comes.
    ``folder`` keeps only the members under that top folder (case-insensitive).
    """
    with _open_zip(zip_name, src) as zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
    if len(members) > ZIP_MAX_MEMBERS:
        raise SegDashError(f"{zip_name}: {len(members)} files exceed the limit of {ZIP_MAX_MEMBERS}")
    total = packed = 0
    budget = memory_budget()
    for m in members:
        check_member_name(zip_name, m.filename)
        total += m.file_size
        packed += m.compress_size
        if m.file_size > _ZIP_MAX_RATIO * max(m.compress_size, 1) and m.file_size > 10_000_000:
            raise SegDashError(
                f"{zip_name}: member {m.filename!r} expands {m.file_size // max(m.compress_size, 1)}"
                "-fold; refused as a ZIP bomb"
            )
        if m.file_size > budget:
            raise SegDashError(
                f"{zip_name}:{m.filename}: {_gb(m.file_size)} uncompressed, more than this machine "
                f"can hold for an import ({_gb(budget)}; SEGDASH_IMPORT_MEMORY sets it)"
            )
    if total > ZIP_MAX_BYTES:
        raise SegDashError(
            f"{zip_name}: uncompressed size {total / 1e9:.1f} GB exceeds the limit of "
            f"{ZIP_MAX_BYTES / 1e9:.1f} GB (set SEGDASH_ZIP_MAX_BYTES to raise it)"
        )
    if total > _ZIP_BOMB_TOTAL and total > _ZIP_TOTAL_RATIO * max(packed, 1):
        raise SegDashError(
            f"{zip_name}: {_gb(packed)} of members that expand to {_gb(total)} "
            f"({total // max(packed, 1)}-fold); refused as a ZIP bomb"
        )
    found = False
    shared = _ZipSource(zip_name, src)
    for m in members:
        path = PurePosixPath(m.filename)
        if folder is not None and (len(path.parts) < 2 or path.parts[0].lower() != folder.lower()):
            continue
        if path.name.startswith(".") or m.filename.startswith("__MACOSX/"):
            continue
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        found = True
        yield f"{zip_name}:{m.filename}", _Member(shared, m)
    if not found:
        where = f"its folder {folder}/" if folder else "it"
        raise SegDashError(f"{zip_name}: {where} holds no images (accepted: {', '.join(IMAGE_SUFFIXES)})")


def check_member_name(zip_name: str, member: str) -> None:
    """Refuse absolute paths, drive letters and ``..`` components in a ZIP member name."""
    norm = member.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm) or ".." in norm.split("/"):
        raise SegDashError(f"{zip_name}: unsafe member name {member!r} (absolute or '..' path); refused")
