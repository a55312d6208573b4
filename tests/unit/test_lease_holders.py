"""events.leases: a lease names its holder so a worker on the same machine can tell it exited."""

from __future__ import annotations

import os
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


def test_a_forked_child_names_itself_not_the_parent_it_was_copied_from() -> None:
    # The parent's name is kept in memory once read; a prefork child starts with that copy.
    parent = holder()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: say its name and leave at once
        os.write(write, holder().encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read()
    os.waitpid(pid, 0)
    assert child.split("/")[2] == str(pid)
    assert child != parent and parent.split("/")[2] == str(os.getpid())
