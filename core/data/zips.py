"""ZIP archives as image sources: member names checked, member count, total size and expansion
ratios capped from the central directory before anything is decompressed (:data:`ZIP_MAX_MEMBERS`,
:data:`ZIP_MAX_BYTES`, from ``SEGDASH_ZIP_MAX_MEMBERS`` / ``SEGDASH_ZIP_MAX_BYTES``); members are
decompressed one at a time, when their turn comes.

Archives that are not image sources (a model package, a run's ``bundle.zip``, the ZIP inside a ``.pt``
file) go through :func:`check_members` and :func:`read_capped`: every member's size and expansion
ratio checked from the directory before anything is read, and a member decompressed in a stream that
stops at its cap, whatever its header says."""

from __future__ import annotations

import io
import os
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

from ..errors import SegDashError
from .limits import _ZIP_MAX_RATIO, IMAGE_SUFFIXES, _gb, _reason, memory_budget

__all__ = ["ZipFolder", "ZIP_MAX_BYTES", "ZIP_MAX_MEMBERS", "check_member_name", "check_members", "read_capped"]

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


def expand_zip(zip_name: str, src: Path | bytes, folder: str | None = None) -> Iterable[tuple[str, Any]]:
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


_CHUNK = 1024**2


def check_members(
    zip_name: str, infos: list[zipfile.ZipInfo], *, max_bytes: int, max_ratio: int, ratio_from: int
) -> None:
    """Refuse an archive from its central directory alone, before any member is decompressed: more than
    :data:`ZIP_MAX_MEMBERS` members, an unsafe member name, members that together expand beyond
    ``max_bytes``, or a member over ``ratio_from`` bytes that expands more than ``max_ratio``-fold."""
    if len(infos) > ZIP_MAX_MEMBERS:
        raise SegDashError(f"{zip_name}: {len(infos)} files exceed the limit of {ZIP_MAX_MEMBERS}")
    total = 0
    for m in infos:
        check_member_name(zip_name, m.filename)
        total += m.file_size
        if m.file_size > ratio_from and m.file_size > max_ratio * max(m.compress_size, 1):
            raise SegDashError(
                f"{zip_name}:{m.filename}: {_gb(m.compress_size)} that expand to {_gb(m.file_size)} "
                f"({m.file_size // max(m.compress_size, 1)}-fold); refused as a ZIP bomb"
            )
        if total > max_bytes:
            raise SegDashError(
                f"{zip_name}:{m.filename}: the archive's members hold {_gb(total)} or more once "
                f"decompressed, more than the limit of {_gb(max_bytes)}; refused before reading it"
            )


def read_capped(zf: zipfile.ZipFile, info: zipfile.ZipInfo, zip_name: str, cap: int) -> bytes:
    """One member, decompressed a megabyte at a time: refused once it passes ``cap`` bytes or the size
    its directory entry states (a lying header), so memory never holds more than the cap."""
    if info.file_size > cap:
        raise SegDashError(
            f"{zip_name}:{info.filename}: {_gb(info.file_size)} once decompressed, more than the limit of "
            f"{_gb(cap)}; refused before reading it"
        )
    out = io.BytesIO()
    try:
        with zf.open(info) as src:
            while chunk := src.read(_CHUNK):
                if out.tell() + len(chunk) > min(cap, info.file_size):
                    raise SegDashError(f"{zip_name}:{info.filename}: larger than the ZIP's directory says; refused")
                out.write(chunk)
    except SegDashError:
        raise
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise SegDashError(f"{zip_name}:{info.filename}: cannot be read ({_reason(exc)})") from None
    return out.getvalue()
