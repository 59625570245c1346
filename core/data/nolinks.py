"""Reading a Zarr or N5 volume without following a link inside it.

A volume read by reference stays where it is, so its files can change after the import: a chunk
replaced by a symbolic link to another file (``/etc/shadow``, another user's data) would be decoded
and shown as pixels. SegDash does not follow links inside a volume:

- Zarr: every key is opened through :class:`NoLinkStore`, a read-only zarr ``LocalStore`` that walks
  from the volume's folder one component at a time with ``O_NOFOLLOW`` (``openat``), so a link at any
  depth is refused when it is opened, with no gap between a check and the open.
- N5 (read by TensorStore, whose file driver follows links): :func:`check_no_links` looks at the
  files a read touches (``lstat``, every component) right before each read.

A refusal names the volume and the linked key, never what the link points to.
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat
from pathlib import Path
from typing import Any, Iterable

from zarr.abc.store import ByteRequest, OffsetByteRequest, RangeByteRequest, SuffixByteRequest
from zarr.core.buffer import Buffer, BufferPrototype, default_buffer_prototype
from zarr.storage import LocalStore

from ..errors import SegDashError

__all__ = ["NoLinkStore", "read_no_links", "check_no_links", "LinkInVolume"]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_WALKS = _NOFOLLOW and os.open in os.supports_dir_fd  # openat with O_NOFOLLOW (Linux, macOS, BSD)


class LinkInVolume(SegDashError):
    """A file or folder inside a volume is a symbolic link (or a path leaves the volume)."""

    def __init__(self, root: str | Path, key: str):
        self.root, self.key = str(root), key
        super().__init__(
            f"{root}: {key} is a link (or leaves the volume); SegDash does not follow links inside a volume, "
            "so this volume is not read: replace the link by the file itself"
        )


def _parts(root: Path, key: str) -> list[str]:
    parts = [p for p in key.replace("\\", "/").split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise LinkInVolume(root, key)
    return parts


def _open_walk(root: Path, key: str) -> int:
    """A read-only descriptor of ``root/key`` opened a component at a time, no link followed."""
    parts = _parts(root, key)
    fd = os.open(root, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            flags = os.O_RDONLY | _NOFOLLOW | _CLOEXEC | (0 if last else _DIRECTORY)
            try:
                nxt = os.open(part, flags, dir_fd=fd)
            except OSError as exc:
                if exc.errno == errno.ELOOP or os.path.islink(os.path.join(root, *parts[: i + 1])):
                    raise LinkInVolume(root, key) from None
                raise
            os.close(fd)
            fd = nxt
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IsADirectoryError(key)
        return fd
    except BaseException:
        os.close(fd)
        raise


def _open_checked(root: Path, key: str) -> int:
    """Where ``openat`` with ``O_NOFOLLOW`` is missing (Windows): check every component, then open."""
    check_no_links(root, [key])
    return os.open(root.joinpath(*_parts(root, key)), os.O_RDONLY | getattr(os, "O_BINARY", 0))


def read_no_links(root: str | Path, key: str, byte_range: ByteRequest | None = None) -> bytes:
    """The bytes of ``root/key`` (or the ``byte_range`` of them), refusing a link at any depth.

    Raises:
        LinkInVolume: a component of ``key`` is a link, or ``key`` leaves ``root``.
        FileNotFoundError: no such file (a chunk never written).
    """
    root = Path(root)
    fd = _open_walk(root, key) if _WALKS else _open_checked(root, key)
    with os.fdopen(fd, "rb") as f:
        if byte_range is None:
            return f.read()
        size = f.seek(0, os.SEEK_END)
        if isinstance(byte_range, RangeByteRequest):
            f.seek(byte_range.start)
            return f.read(byte_range.end - byte_range.start)
        if isinstance(byte_range, OffsetByteRequest):
            f.seek(byte_range.offset)
        elif isinstance(byte_range, SuffixByteRequest):
            f.seek(max(0, size - byte_range.suffix))
        else:
            raise TypeError(f"unexpected byte range {byte_range!r}")
        return f.read()


def check_no_links(root: str | Path, keys: Iterable[str]) -> None:
    """Refuse when a component of any ``root/key`` that exists is a link (missing files are fine).

    Raises:
        LinkInVolume: the first such key.
    """
    root = Path(root)
    seen: set[Path] = set()
    for key in keys:
        path = root
        for part in _parts(root, key):
            path = path / part
            if path in seen:
                continue
            try:
                mode = os.lstat(path).st_mode
            except FileNotFoundError:
                break
            if stat.S_ISLNK(mode):
                raise LinkInVolume(root, key)
            seen.add(path)


class NoLinkStore(LocalStore):
    """A read-only zarr ``LocalStore`` whose every read goes through :func:`read_no_links`."""

    def __init__(self, root: str | Path) -> None:
        super().__init__(root, read_only=True)

    def _read(self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None) -> Buffer | None:
        try:
            return prototype.buffer.from_bytes(read_no_links(self.root, key, byte_range))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def get_sync(
        self, key: str, *, prototype: BufferPrototype | None = None, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        self._ensure_open_sync()
        return self._read(key, prototype or default_buffer_prototype(), byte_range)

    async def get(
        self, key: str, prototype: BufferPrototype | None = None, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        if not self._is_open:
            await self._open()
        return await asyncio.to_thread(self._read, key, prototype or default_buffer_prototype(), byte_range)

    async def get_partial_values(
        self, prototype: BufferPrototype, key_ranges: Iterable[tuple[str, ByteRequest | None]]
    ) -> list[Buffer | None]:
        return list(await asyncio.gather(*(self.get(key, prototype, r) for key, r in key_ranges)))

    async def exists(self, key: str) -> bool:
        def opens() -> bool:
            try:
                os.close(_open_walk(self.root, key) if _WALKS else _open_checked(self.root, key))
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                return False
            return True

        return await asyncio.to_thread(opens)

    def with_read_only(self, read_only: bool = False) -> Any:
        if not read_only:
            raise SegDashError(f"{self.root}: a volume read by reference is never written")
        return NoLinkStore(self.root)
