"""What several commands share: the workspace, progress lines, notices and the planar-TIFF choice."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable

__all__ = [
    "workspace",
    "progress_printer",
    "stage_progress",
    "notice",
    "planar_choice",
    "PLANAR_HINT",
    "SINGLETON_HINT",
    "file_summary",
]

#: added to the message of a planar TIFF read without ``--as-stack`` / ``--as-colour``
PLANAR_HINT = ": --as-stack for slices, --as-colour for one colour image"
#: added to the message of a TIFF with an unnamed axis of one read without ``--as-stack`` / ``--as-image``
SINGLETON_HINT = ": --as-stack for the slices, --as-image for the pages as stored"


def workspace(args: argparse.Namespace, *, writes: bool = True):
    """The workspace of ``--workspace`` (a new, empty one first receives the bundled sample); for a
    command that ``writes``, its catalog is copied into ``backups/`` when the last copy is a day old."""
    from ..store.workspace import Workspace
    from ..workflow.sample import ensure_sample

    ws = Workspace(args.workspace)
    if writes:
        ws.backup_if_due()
    ensure_sample(ws)
    return ws


def notice(text: str, kind: str = "notice") -> None:
    """One ``notice: ...`` (or ``warning: ...``) line on standard error."""
    print(f"{kind}: {text}", file=sys.stderr, flush=True)


def planar_choice(args: argparse.Namespace) -> bool | None:
    """``--as-stack`` -> True, ``--as-colour`` or ``--as-image`` -> False, none of them -> None (ask)."""
    return True if args.as_stack else (False if args.as_colour or getattr(args, "as_image", False) else None)


def file_summary(out: str | Path, **fields: Any) -> dict[str, Any]:
    """``{**fields, out, bytes}`` for a file or a folder (the total size of its files)."""
    out = Path(out)
    size = out.stat().st_size if out.is_file() else sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {**fields, "out": str(out.resolve()), "bytes": size}


def progress_printer(
    label: str, *, quiet: bool = False, piped: bool = True
) -> Callable[[float, float, float | None, str], None]:
    """A progress line on standard error: ``label [#####     ] 12/30 ETA 4s``, redrawn in place on a
    terminal (at most 5 times a second). Piped, a line every 2 s, or nothing with ``piped=False``;
    nothing at all with ``quiet`` (``-q``). Standard output keeps only the JSON summary."""
    tty = sys.stderr.isatty()
    last = [0.0]
    if quiet or not (tty or piped):
        return lambda done, total, eta_s=None, extra="": None

    def show(done: float, total: float, eta_s: float | None = None, extra: str = "") -> None:
        now = time.monotonic()
        if now - last[0] < (0.2 if tty else 2.0) and done < total:
            return
        last[0] = now
        frac = 0.0 if total <= 0 else min(1.0, done / total)
        bar = "#" * int(frac * 30)
        eta = f" ETA {eta_s:.0f}s" if eta_s is not None else ""
        line = f"{label} [{bar:<30}] {done:g}/{total:g}{eta} {extra}".rstrip()
        sys.stderr.write(("\r" + line + "\033[K") if tty else (line + "\n"))
        if tty and done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def stage_progress(label: str, *, quiet: bool = False) -> Callable[[int, int, str], None]:
    """``progress(done, total, stage)`` for import and export: a bar with an ETA per stage (``import
    images``, ``export masks`` ...) on a terminal; nothing when piped or with ``quiet`` (``-q``)."""
    bars: dict[str, Any] = {}

    def progress(done: int, total: int, stage: str) -> None:
        if stage not in bars:
            bars[stage] = (progress_printer(f"{label} {stage}", quiet=quiet, piped=False), time.monotonic())
        show, t0 = bars[stage]
        elapsed = time.monotonic() - t0
        show(done, total, elapsed / done * (total - done) if done > 0 else None)

    return progress
