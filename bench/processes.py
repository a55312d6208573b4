"""The servers the HTTP benchmark loads, as subprocesses of their own, and the CPU time their
process trees and the database's backends use, read from /proc (Linux only).

The benchmark runs the Procfile's `web:` line as written (``procfile_web_argv``); every
server runs in its own process group, so stopping it stops its workers too.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path

from .services import ROOT, BenchError, wait_until


def procfile_web_argv(port: int) -> list[str]:
    """The Procfile's `web:` command with its port filled in, split as a shell would."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            command = line.split(":", 1)[1].strip()
            command = re.sub(r"\$\{PORT(:-[0-9]+)?\}|\$PORT", str(port), command)
            return shlex.split(command)
    raise BenchError("the Procfile has no web: line")


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def tree_cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and every descendant alive now, in seconds."""
    tree = _children()
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo.extend(tree.get(p, []))
    return sum(cpu_ticks(p) for p in pids) / os.sysconf("SC_CLK_TCK")


def database_cpu_by_backend(db_name: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend serving ``db_name`` now (by its process title),
    by pid."""
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if title.startswith(b"postgres: ") and f" {db_name} ".encode() in title:
            found[int(entry.name)] = cpu_ticks(int(entry.name)) / os.sysconf("SC_CLK_TCK")
    return found


def database_cpu_seconds(db_name: str) -> float:
    """CPU of the PostgreSQL backends serving ``db_name``, all together."""
    return sum(database_cpu_by_backend(db_name).values())


class Server:
    """A web server subprocess in its own process group, logging to a file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, port: int, *, timeout: float = 60.0) -> None:
        self.port = port
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(self._answers, timeout=timeout, interval=0.2, what=f"{self.name} to listen")
        time.sleep(1.0)  # every worker up, not only the first

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise BenchError(f"{self.name} exited early; its log:\n{self.log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    @property
    def pid(self) -> int:
        if self.process is None or self.process.poll() is not None:
            raise BenchError(f"{self.name} is not running; its log:\n{self.log_tail()}")
        return self.process.pid

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.pid)

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        except ProcessLookupError:
            pass
        self.process = None
