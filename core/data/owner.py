"""Which process owns something in the workspace, and whether that process is still there.

An import in progress, a training run and a temporary file of an atomic write all belong to one
process. When that process dies (kill -9, power loss, a server restart) what it owned is left
behind: :func:`is_gone` tells the next process that opens the workspace it may clean up (or, for a
run, show it as interrupted). The catalog is SQLite in WAL mode, which works only on one machine,
so a process id is meaningful; the host name is kept as well, so that a workspace seen from another
host or container is never cleaned on the strength of a process id from elsewhere.

Example:
    >>> me = Owner.current()
    >>> is_gone(me.pid, me.host)
    False
"""

from __future__ import annotations

import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Owner", "is_gone", "host_token", "STALE_HEARTBEAT_S"]

STALE_HEARTBEAT_S = 300.0  # a run whose heartbeat is older than this is interrupted, wherever its owner ran


@dataclass(frozen=True)
class Owner:
    """A process: its id and the host it runs on."""

    pid: int
    host: str

    @classmethod
    def current(cls) -> Owner:
        return cls(os.getpid(), socket.gethostname())

    def token(self) -> str:
        """``<host>-<pid>`` with the host reduced to letters and digits, for file names."""
        return f"{host_token(self.host)}-{self.pid}"


def host_token(host: str | None = None) -> str:
    """The host name as letters and digits only (safe in a file name)."""
    return re.sub(r"[^A-Za-z0-9]", "", host if host is not None else socket.gethostname())[:32] or "host"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, belongs to someone else
        return True
    except OSError:
        return False
    try:  # a killed process whose parent has not collected it yet (a zombie) is gone too
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2 :][:1] != "Z"
    except (OSError, ValueError):
        return True


def is_gone(
    pid: int | None,
    host: str | None,
    heartbeat: float | None = None,
    *,
    stale_s: float = STALE_HEARTBEAT_S,
    now: float | None = None,
) -> bool:
    """True when the owner is certainly gone.

    Args:
        pid: process id of the owner (``None``: unknown).
        host: host name of the owner, full or as :func:`host_token` (``None``: unknown).
        heartbeat: when the owner last said it was alive (``time.time()``), if it says so.
        stale_s: a heartbeat older than this means gone, on any host.

    On this host a dead process id means gone. On another host (or with no process id) only a
    stale heartbeat does; with neither, the owner is taken as gone (nothing can keep it alive).
    """
    now = time.time() if now is None else now
    if heartbeat is not None and now - heartbeat > stale_s:
        return True
    same_host = host is not None and host_token(host) == host_token()
    if pid is not None and same_host:
        return not _alive(int(pid))
    return heartbeat is None
