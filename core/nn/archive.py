"""Model files are data from users: their sizes are checked before anything of them is read.

A checkpoint (``.pt``; torch writes it as a ZIP), a run's ``bundle.zip`` and a bioimage.io package are
refused from their size on disk and their ZIP directory, before torch or YAML reads a byte of them, and
each member is then decompressed in a stream that stops at its cap (:func:`core.data.zips.read_capped`):
a 1.5 MB bundle whose ``model.pt`` claims 1.5 GB is refused in a few megabytes of memory.

Limits: a model file or member may hold at most ``SEGDASH_MODEL_MAX_BYTES`` (default 4 GB) or the memory
budget (:func:`core.data.limits.memory_budget`: half the available memory), whichever is smaller; a
member above 32 MB that expands more than 100-fold is a ZIP bomb (weights barely compress: about
1.1-fold); a description or config (``rdf.yaml``, ``config.json``) at most 16 MB.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any

from ..data.limits import _gb, memory_budget
from ..data.zips import check_members, read_capped
from ..errors import SegDashError

__all__ = [
    "MODEL_MAX_BYTES",
    "TEXT_MAX_BYTES",
    "model_limit",
    "check_model_file",
    "check_archive",
    "read_member",
    "bundle_source",
]

MODEL_MAX_BYTES = int(os.environ.get("SEGDASH_MODEL_MAX_BYTES", 4 * 1024**3))
TEXT_MAX_BYTES = 16 * 1024**2
_MODEL_MAX_RATIO = 100
_RATIO_FROM = 32 * 1024**2
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")
_BUNDLE_MEMBER = "model.pt"  # where core.train.bundle.write_bundle puts the weights


def model_limit() -> int:
    """Bytes one model file (or one member of a model archive) may hold once decompressed."""
    return min(MODEL_MAX_BYTES, memory_budget())


def check_archive(zf: zipfile.ZipFile, name: str) -> None:
    """Refuse a model archive from its directory: unsafe names, too many members, members that together
    hold more than :func:`model_limit`, or a member that expands like a ZIP bomb."""
    check_members(name, zf.infolist(), max_bytes=model_limit(), max_ratio=_MODEL_MAX_RATIO, ratio_from=_RATIO_FROM)


def check_model_file(path: Path, name: str | None = None) -> None:
    """A model file on disk, before it is read: its size against :func:`model_limit`, and when it is a
    ZIP (torch's own format, a bundle, a package) its directory (:func:`check_archive`)."""
    name = name or str(path)
    limit = model_limit()
    size = path.stat().st_size
    if size > limit:
        raise SegDashError(
            f"{name}: a model file of {_gb(size)}, more than the limit of {_gb(limit)} "
            "(SEGDASH_MODEL_MAX_BYTES, or half the available memory); refused before reading it"
        )
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                check_archive(zf, name)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise SegDashError(f"{name}: cannot read this file's ZIP directory ({type(exc).__name__})") from None


def read_member(zf: zipfile.ZipFile, member: str, zip_name: str, cap: int | None = None) -> bytes:
    """One member of a checked archive, decompressed in a stream capped at ``cap`` (default
    :func:`model_limit`)."""
    try:
        info = zf.getinfo(member)
    except KeyError:
        raise SegDashError(f"{zip_name}: no member {member!r}") from None
    return read_capped(zf, info, zip_name, model_limit() if cap is None else cap)


def bundle_source(path: Path) -> tuple[Any, str] | None:
    """``(file object, "path (member)")`` when ``path`` is a ZIP holding a checkpoint (a run's
    ``bundle.zip``); ``None`` when it is not a ZIP or is torch's own ZIP format. The member is read
    with :func:`read_member` (the archive's directory was checked by :func:`check_model_file`), and
    the checkpoint inside, torch's own ZIP, has its directory checked too.

    Raises:
        ValueError: a ZIP with no checkpoint, or with several and no ``model.pt``; the message
            names the checkpoint files inside.
    """
    if not zipfile.is_zipfile(path):
        return None
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            if any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
                return None  # a plain torch.save file (torch writes a ZIP archive)
            inside = [n for n in names if n.lower().endswith(_CHECKPOINT_SUFFIXES)]
            member = _BUNDLE_MEMBER if _BUNDLE_MEMBER in names else (inside[0] if len(inside) == 1 else None)
            if member is None:
                if not inside:
                    bundle = "config.json" in names
                    raise SegDashError(
                        f"{path}: a ZIP without a checkpoint inside"
                        + (
                            " (a reproducibility bundle of a run that had no checkpoint)"
                            if bundle
                            else f" (members: {', '.join(names[:8])}{' ...' if len(names) > 8 else ''})"
                        )
                        + "; give a run's best.pt or last.pt, or a bundle.zip that holds model.pt"
                    )
                raise SegDashError(
                    f"{path}: a ZIP with several checkpoints inside ({', '.join(inside[:8])}): "
                    f"extract the one to use (unzip {path.name} {inside[0]}) and give that file"
                )
            data = io.BytesIO(read_member(zf, member, str(path)))
        name = f"{path} ({member})"
        if zipfile.is_zipfile(data):
            with zipfile.ZipFile(data) as inner:
                check_archive(inner, name)
        data.seek(0)
        return data, name
    except (zipfile.BadZipFile, OSError) as exc:
        raise SegDashError(f"{path}: cannot read this ZIP ({exc})") from None
