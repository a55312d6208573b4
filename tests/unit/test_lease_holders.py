"""events.leases: a lease names its holder so a worker on the same machine can tell it exited."""

from __future__ import annotations

import subprocess
import sys

from events.holders import holder, holder_is_dead

SAY_HOLDER = (
    "from events.holders import holder; print(holder(), flush=True); import time; time.sleep(60)"
)


def test_a_holder_is_dead_once_its_process_exits_and_alive_before() -> None:
    child = subprocess.Popen([sys.executable, "-c", SAY_HOLDER], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    name = child.stdout.readline().strip()
    try:
        assert not holder_is_dead(name)
    finally:
        child.kill()
        child.wait(timeout=10)
    assert holder_is_dead(name)


def test_a_holder_this_process_cannot_see_is_never_called_dead() -> None:
    boot, namespace, pid, started = holder().split("/")
    elsewhere = [
        f"another-boot/{namespace}/999999/1",  # another machine
        f"{boot}/another-namespace/999999/1",  # another container on this machine
        f"{boot}/{namespace}/{pid}/-",  # a machine without /proc
        "not a holder",
    ]
    assert [holder_is_dead(name) for name in elsewhere] == [False, False, False, False]
    # and a pid reused by a new process (another start time) is not the holder
    assert holder_is_dead(f"{boot}/{namespace}/{pid}/{int(started) - 1}")
    assert not holder_is_dead(holder())
