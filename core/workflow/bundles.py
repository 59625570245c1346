"""A dataset as a folder or ZIP of ``images/`` and ``masks/`` (or ``labels/``) sub-folders, as SegDash's
own dataset export writes it, split into its halves; its ``segdash.json`` supplies the class names."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from ..data.io import ZipFolder
from ..errors import SegDashError

__all__ = ["split_bundle", "MANIFEST"]

_MASK_DIRS = ("masks", "mask", "labels", "label", "gt")
_IMAGE_DIRS = ("images", "image", "imgs", "raw")
MANIFEST = "segdash.json"


def split_bundle(source: Any) -> tuple[Any, Any | None, dict[str, Any]]:
    """Split a folder or ZIP holding ``images/`` and ``masks/`` sub-folders.

    Returns ``(images_source, masks_source_or_None, manifest)``; a source without that layout is
    returned unchanged with ``(source, None, {})``. A list of one upload counts as that upload. A
    ZIP is not decompressed here: its halves are :class:`core.data.io.ZipFolder` views read member by
    member later.
    """
    if isinstance(source, (list, tuple)) and len(source) == 1:
        inner = source[0]
        images, masks, manifest = split_bundle(inner)
        return (source, None, {}) if images is inner else (images, masks, manifest)
    if isinstance(source, (str, Path)) and Path(source).is_dir():
        root = Path(source)
        img = next((root / d for d in _IMAGE_DIRS if (root / d).is_dir()), None)
        msk = next((root / d for d in _MASK_DIRS if (root / d).is_dir()), None)
        manifest = _manifest_text(root / MANIFEST) if (root / MANIFEST).is_file() else {}
        if img is not None:
            return img, msk, manifest
        return source, None, {}
    zsrc, name = _zip_source(source)
    if zsrc is None:
        return source, None, {}
    try:
        zf = zipfile.ZipFile(
            Path(zsrc[1]) if isinstance(zsrc, tuple) and isinstance(zsrc[1], Path) else io.BytesIO(zsrc[1])
        )
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise SegDashError(f"{name}: not a readable ZIP file ({' '.join(str(exc).split())[:120]})") from None
    with zf:
        tops: dict[str, str] = {}
        manifest: dict[str, Any] = {}
        for m in zf.infolist():
            parts = PurePosixPath(m.filename).parts
            if len(parts) == 1 and parts[0] == MANIFEST and m.file_size < 1_000_000:
                try:
                    manifest = json.loads(zf.read(m))
                except (ValueError, zipfile.BadZipFile, OSError):
                    manifest = {}
            if len(parts) >= 2 and not m.is_dir():
                tops.setdefault(parts[0].lower(), parts[0])
        img_dir = next((d for d in _IMAGE_DIRS if d in tops), None)
        if img_dir is None:
            return source, None, {}
        msk_dir = next((d for d in _MASK_DIRS if d in tops), None)
    whole = zsrc[1] if isinstance(zsrc[1], Path) else (name, zsrc[1])
    manifest = manifest if isinstance(manifest, dict) else {}
    return (ZipFolder(whole, tops[img_dir]), ZipFolder(whole, tops[msk_dir]) if msk_dir else None, manifest)


def _manifest_text(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text()) if path.stat().st_size < 1_000_000 else {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _zip_source(source: Any) -> tuple[tuple[str, Any] | None, str]:
    """``((name, Path or bytes), name)`` for a ZIP path, ``(name, bytes)`` pair or upload, else ``(None, "")``."""
    if isinstance(source, (str, Path)):
        p = Path(source)
        return ((p.name, p), p.name) if p.suffix.lower() == ".zip" and p.is_file() else (None, "")
    if isinstance(source, tuple) and len(source) == 2 and str(source[0]).lower().endswith(".zip"):
        return (str(source[0]), bytes(source[1])), str(source[0])
    name = str(getattr(source, "name", ""))
    if name.lower().endswith(".zip") and hasattr(source, "read"):
        data = source.getvalue() if hasattr(source, "getvalue") else source.read()
        return (Path(name).name, data), Path(name).name
    return None, ""
