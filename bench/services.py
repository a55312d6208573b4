"""The processes and scratch state a benchmark run owns: a database, a Redis, a worker.

Everything here is private to one run: a PostgreSQL database made for it, a redis-server on a
free loopback port, and `celery worker` subprocesses. Nothing touches the system Redis on 6379 or
anybody else's database, and everything started here is stopped by the caller's ``finally``.
No Django imports at module level: this runs before Django is set up.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


class BenchError(RuntimeError):
    """The run cannot go on (a service did not start, a check failed). Exit 2, not a MISS."""


def wait_until(
    predicate: Callable[[], T], *, timeout: float, interval: float = 0.05, what: str
) -> T:
    """Poll ``predicate()`` until it is truthy; BenchError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- PostgreSQL -------------------------------------------------------------------------------


class ScratchDatabase:
    """A database of the run's own on the server named by DATABASE_URL, dropped and re-created.

    The name must contain "bench": this class drops it, so it must never be a real database.
    """

    def __init__(self, server_url: str, name: str) -> None:
        if "bench" not in name:
            raise BenchError(f"refusing to drop and re-create {name!r}: the name must say bench")
        parts = urlsplit(server_url)
        if parts.scheme.lower() not in {"postgres", "postgresql", "pgsql"}:
            raise BenchError(f"DATABASE_URL must be a postgres:// URL, not {parts.scheme}://")
        self._parts = parts
        self.name = name

    @property
    def url(self) -> str:
        return urlunsplit(self._parts._replace(path=f"/{self.name}"))

    @property
    def display_url(self) -> str:
        """The URL without any password, for printing."""
        p = self._parts
        user = unquote(p.username or "")
        host = f"{p.hostname or '127.0.0.1'}:{p.port or 5432}"
        return f"postgres://{user}@{host}/{self.name}" if user else f"postgres://{host}/{self.name}"

    def _maintenance(self) -> psycopg.Connection[Any]:
        p = self._parts
        return psycopg.connect(
            host=p.hostname or "127.0.0.1",
            port=p.port or 5432,
            user=unquote(p.username or "") or None,
            password=unquote(p.password or "") or None,
            dbname="postgres",
            autocommit=True,
            connect_timeout=10,
        )

    def recreate(self) -> None:
        with self._maintenance() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
            )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))

    def drop(self) -> None:
        with self._maintenance() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
            )

    def server_version(self) -> str:
        with self._maintenance() as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "unknown"


# --- Redis ------------------------------------------------------------------------------------


# --- Celery worker ----------------------------------------------------------------------------


def wait_for_count(
    count: Callable[[], int], n: int, worker: WorkerProcess, what: str, *, least: float = 60.0
) -> None:
    """Poll until ``count()`` reaches ``n`` (every 20 ms, short against runs of seconds);
    bounded (``least`` seconds, or half a second per item), and fails if the worker died."""
    deadline = time.monotonic() + max(least, n * 0.5)
    while count() < n:
        if time.monotonic() > deadline:
            raise BenchError(f"timed out waiting for {n} {what}; {count()} done")
        worker.check_alive()
        time.sleep(0.02)


class WorkerProcess:
    """`celery -A agents_project worker`, as the Procfile runs it, on the run's database and Redis.

    It inherits this process's environment, which __main__ has pointed at the scratch database
    and the private Redis before anything was started.
    """

    READY = b" ready."

    def __init__(
        self,
        *,
        queues: str,
        log_path: Path,
        pool: str,
        concurrency: int,
        env: dict[str, str] | None = None,
        include: str = "",
        processes: int = 1,
    ) -> None:
        self.queues = queues
        self.log_path = log_path
        self.pool = pool
        self.concurrency = concurrency
        self.extra_env = env or {}
        self.include = include  # modules of extra tasks (the bare references)
        # More than one: that many worker processes sharing the concurrency, started together
        # under one shell (``pid`` is the shell's; CPU and memory are summed over its tree).
        self.processes = processes
        self.process: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        if self.processes == 1:
            return self._celery(self.concurrency, f"bench-{os.getpid()}@%h")
        each = max(1, self.concurrency // self.processes)
        commands = [
            shlex.join(self._celery(each, f"bench{i}-{os.getpid()}@%h"))
            for i in range(self.processes)
        ]
        return ["sh", "-c", " & ".join(commands) + " & wait"]

    def _celery(self, concurrency: int, name: str) -> list[str]:
        extra = ["--include", self.include] if self.include else []
        return [
            sys.executable, "-m", "celery", "-A", "agents_project",
            "worker", "-P", self.pool, "-c", str(concurrency), "-Q", self.queues,
            "-n", name, "-l", "info",
            "--without-mingle", "--without-gossip", "--without-heartbeat", *extra,
        ]  # fmt: skip

    def start(self, *, timeout: float = 90.0) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.extra_env}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.argv(),
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group: Ctrl-C reaches only us, and stop() ends the group.
                start_new_session=True,
            )
        wait_until(self._ready, timeout=timeout, interval=0.2, what="the celery worker")

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise BenchError(f"the worker exited early; its log:\n{self.log_tail()}")
        return self.log_path.read_bytes().count(self.READY) >= self.processes

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise BenchError("the worker is not running")
        return self.process.pid

    def check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            raise BenchError(f"the worker is not running; its log:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None:
            return
        # The whole group: with several processes the shell would not pass the signal on.
        group = self.process.pid
        _signal_group(group, signal.SIGTERM)
        deadline = time.monotonic() + 30
        # poll() reaps the shell: a zombie still counts as a member of its group.
        while (self.process.poll() is None or _group_alive(group)) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _group_alive(group):
            _signal_group(group, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None


def _signal_group(group: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, sig)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


# --- Memory -----------------------------------------------------------------------------------


def _status_kib(pid: int | str, field: str) -> int:
    """A ``kB`` field of /proc/<pid>/status (VmRSS, VmHWM); 0 if the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in children:
                found.append(int(child))
                todo.append(int(child))
    return found


def tree_rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants (prefork children, if any)."""
    return sum(_status_kib(p, "VmRSS") for p in [pid, *_descendants(pid)])


def own_rss_kib() -> int:
    return _status_kib("self", "VmRSS")


def reset_own_peak() -> bool:
    """Reset this process's VmHWM (peak RSS) to its current RSS; False where Linux refuses."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def own_peak_kib() -> int:
    return _status_kib("self", "VmHWM")
