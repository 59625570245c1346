"""The headless command line: ``python -m core import|export|export-model|train|predict|measure|list|delete|repair``.

A public interface: options, exit codes and the last line of output are relied on by scripts.

- Exit 0 on success, with a one-line JSON summary as the last line of standard output.
- Exit 2 on refused input (bad file, unknown dataset, shapes that do not match ...), with one line
  ``error: <message>`` on standard error and no traceback (set ``SEGDASH_DEBUG=1`` to see one).
- Exit 1 on an unexpected internal error, also as one line; 130 when interrupted.
- Every command takes ``--workspace DIR`` (default ``$SEGDASH_WORKSPACE`` or ``./workspace``). A
  new, empty workspace first receives the bundled sample as dataset ``isbi2012``.
- torch is imported only by the commands that run a model, and only once their input has been
  checked: a refusal (unknown dataset, missing file) answers at once, not after seconds of imports.

This module holds :func:`main` and the exit codes; the parser (every option) is :mod:`core.commands.parser`
and the commands' bodies are in :mod:`core.commands` (``run_<command>(args) -> dict``).
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Sequence

from . import commands
from .errors import SegDashError

__all__ = ["main", "build_parser", "run", "version"]

EXIT_OK, EXIT_INTERNAL, EXIT_REFUSED, EXIT_INTERRUPTED = 0, 1, 2, 130


def version() -> str:
    """SegDash's version: the installed package's metadata (``pip install .``), else ``core.__version__``
    (a checkout run with ``python -m core``)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    from . import __version__

    try:
        return dist_version("segdash")
    except PackageNotFoundError:
        return __version__


def build_parser(prog: str = "python -m core") -> argparse.ArgumentParser:
    """The parser of every command (:mod:`core.commands.parser`), ``--version`` included."""
    from .commands.parser import build_parser as _build

    return _build(prog, version())


def run() -> None:
    """The ``segdash`` console command (``pip install .``): ``python -m core`` under another name."""
    if os.environ.get("SEGDASH_SHARE_CPU", "1") != "0":  # before torch loads OpenMP, as core/__main__.py
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    sys.exit(main(prog="segdash"))


def main(argv: Sequence[str] | None = None, prog: str = "python -m core") -> int:
    args = build_parser(prog).parse_args(argv)
    debug = bool(os.environ.get("SEGDASH_DEBUG"))
    try:
        summary = args.func(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except commands.TrainingFailed as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_INTERNAL
    except SegDashError as exc:  # a user's mistake; a plain ValueError (numpy, torch) is an internal error
        if debug:
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_REFUSED
    except OSError as exc:
        if debug:
            raise
        if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            from .store.workspace import human_bytes

            where = Path(exc.filename).parent if exc.filename else Path.cwd()
            print(
                f"error: not enough space to write {exc.filename or 'a file'}: "
                f"{human_bytes(shutil.disk_usage(where).free)} free there",
                file=sys.stderr,
            )
            return EXIT_REFUSED
        print(f"error: {type(exc).__name__}: {_one_line(exc)} (set SEGDASH_DEBUG=1 for a traceback)", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as exc:  # noqa: BLE001 - the CLI promises one line, not a traceback
        if debug:
            raise
        print(f"error: {type(exc).__name__}: {_one_line(exc)} (set SEGDASH_DEBUG=1 for a traceback)", file=sys.stderr)
        return EXIT_INTERNAL
    _write_line(json.dumps(summary, default=str))
    return EXIT_OK


def _write_line(line: str) -> None:
    """Write the summary line to stdout in one write, so that ranks of one torchrun sharing a pipe
    never interleave their lines (a pipe write up to 4096 bytes is atomic; print() is two writes)."""
    sys.stdout.flush()
    data = (line + "\n").encode()
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # a captured stdout (tests, notebooks)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        return
    while data:
        data = data[os.write(fd, data) :]


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
