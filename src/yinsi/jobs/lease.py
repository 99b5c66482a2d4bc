"""Leases held by a process (租约): who holds a row (``host:pid``) and whether that process may still run.
Shared by the jobs table and by the rights queue's per-request claim (``yinsi.rights.lease``)."""

from __future__ import annotations

import os
import socket

__all__ = ["alive", "process_owner"]


def process_owner() -> str:
    """This process, as ``host:pid`` (read each time: a forked worker is another process)."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}"


def alive(owner: str) -> bool:
    """Whether the process named ``host:pid`` may still run (always true for another host)."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname()[:100] or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
