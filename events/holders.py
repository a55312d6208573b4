"""Who holds a lease: a worker process named so that another process on the same machine can
tell when it has exited.

A name is this machine's boot id, its PID namespace, the process id and the process's start
time. A worker that finds a running delivery's holder dead (a prefork child killed, a worker
killed whose message the broker gave back) takes the delivery over at once instead of waiting
for the lease to lapse (events.transitions.claim).
"""

from __future__ import annotations

import os
import socket
from functools import cache
from pathlib import Path


@cache
def _machine() -> tuple[str, str]:
    """This kernel's boot id and this process's PID namespace: where a pid means something."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = socket.gethostname()
    try:
        namespace = os.readlink("/proc/self/ns/pid").removeprefix("pid:").strip("[]")
    except OSError:
        namespace = "-"
    return boot, namespace


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot; None if it is gone (or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return fields[19]


# (pid, name): a process's name does not change, and every claim reads it (a read of /proc
# each time cost more than the rest of the claim's bookkeeping). Keyed by pid, so a prefork
# child that inherits it names itself anew.
_own: tuple[int, str] | None = None


def holder() -> str:
    """This process, as a lease names it."""
    global _own
    pid = os.getpid()
    if _own is None or _own[0] != pid:
        boot, namespace = _machine()
        _own = (pid, f"{boot}/{namespace}/{pid}/{_start_time(pid) or '-'}")
    return _own[1]


def holder_is_dead(name: str) -> bool:
    """Whether the process ``name`` is known to have exited. False when this process cannot
    tell: another machine, another PID namespace, or no /proc."""
    parts = name.split("/")
    if len(parts) != 4 or tuple(parts[:2]) != _machine() or parts[3] == "-":
        return False
    try:
        pid = int(parts[2])
    except ValueError:
        return False
    return _start_time(pid) != parts[3]
