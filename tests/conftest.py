"""Shared fixtures: a private Redis, real Celery worker processes, sources and tokens."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from tests.redis_server import RedisServer, ServiceError

__all__ = ["Beat", "RedisServer", "Worker", "wait_until"]

ROOT = Path(__file__).resolve().parent.parent


def wait_until(
    predicate: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.1, what: str = ""
) -> Any:
    """Poll until ``predicate()`` is truthy; fail the test with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)


# --- Redis --------------------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(
        int(os.environ["SWITCHYARD_TEST_REDIS_PORT"]), tmp_path_factory.mktemp("redis")
    )
    try:
        server.start()
    except ServiceError as exc:
        pytest.exit(str(exc), returncode=3)
    yield server
    server.stop()


# --- Celery workers -----------------------------------------------------------------------


RUNNING: list[CeleryProcess] = []


class CeleryProcess:
    """A real `celery` process (worker or beat) against the test database and private Redis."""

    ready_marker = b""

    def __init__(
        self,
        *,
        name: str,
        database_url: str,
        logdir: Path,
        env: dict[str, str] | None = None,
        prefix: list[str] | None = None,
    ) -> None:
        self.name = name
        self.database_url = database_url
        self.extra_env = env or {}
        # A command the process runs under (``ip netns exec HOST``: tests/hosts.py).
        self.prefix = prefix or []
        self.log_path = logdir / f"{type(self).__name__.lower()}-{name}-{time.monotonic_ns()}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> CeleryProcess:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": self.database_url,
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [*self.prefix, sys.executable, "-m", "celery", "-A", "agents_project", *self.argv()],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        RUNNING.append(self)
        wait_until(self._ready, timeout=60, what=f"{self.name} to be ready")
        return self

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            pytest.fail(f"{self.name} exited early:\n{self.log()}")
        return self.ready_marker in self.log_path.read_bytes()

    def log(self, tail: int | None = 5000) -> str:
        text = self.log_path.read_text(errors="replace")
        return text if tail is None else text[-tail:]

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL the whole process group: no warm shutdown, no acks, nothing restored."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None
        RUNNING.remove(self)

    def stop(self) -> None:
        if self.process is None:
            return
        RUNNING.remove(self)
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None


class Worker(CeleryProcess):
    ready_marker = b" ready."

    def __init__(
        self, *, queues: str, pool: str = "threads", concurrency: int = 4, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.queues = queues
        self.pool = pool
        self.concurrency = concurrency

    def argv(self) -> list[str]:
        return [
            "worker", "-P", self.pool, "-c", str(self.concurrency), "-Q", self.queues,
            "-n", f"{self.name}@%h", "-l", "info",
            "--without-mingle", "--without-gossip", "--without-heartbeat",
        ]  # fmt: skip


def quiesce_workers(redis_server: RedisServer) -> None:
    """Drop queued messages, revoke what running workers hold, and wait until they are idle.

    A transactional test ends with a TRUNCATE of every table; a worker still writing at that
    moment can deadlock it. Messages left over from one test must not run in the next.
    """
    from agents_project.celery import app

    # Workers on the private Redis (the chaos suite stops its RabbitMQ ones itself).
    workers = [
        w
        for w in RUNNING
        if isinstance(w, Worker) and "SWITCHYARD_TEST_BROKER_URL" not in w.extra_env
    ]
    if not workers:
        return
    client = redis_server.client()
    for queue in ("default", "chaos", "maintenance", "maintenance-beat-test", "maintenance-chaos"):
        client.delete(queue)
    names = [f"{w.name}@{socket.gethostname()}" for w in workers]
    # A connection of its own, not one from this process's pool: a test that restarted the
    # broker leaves the pooled ones dead.
    with app.connection_for_write() as connection:
        inspect = app.control.inspect(destination=names, timeout=2.0, connection=connection)
        held = [
            task.get("request", task)["id"]
            for reply in (inspect.scheduled() or {}, inspect.reserved() or {})
            for tasks in reply.values()
            for task in tasks
        ]
        if held:
            app.control.revoke(held, destination=names, connection=connection)

        def idle() -> bool:
            active = inspect.active() or {}
            return len(active) == len(names) and not any(active.values())

        wait_until(idle, timeout=60, interval=0.2, what="workers to finish their tasks")


@pytest.fixture(autouse=True)
def _quiet_workers_after_test(redis_server: RedisServer) -> Iterator[None]:
    # Set up after pytest-django's own autouse fixture, so this runs before its flush.
    yield
    quiesce_workers(redis_server)


class Beat(CeleryProcess):
    ready_marker = b"beat: Starting"

    def argv(self) -> list[str]:
        schedule = self.log_path.with_suffix(".schedule")
        return ["beat", "-l", "info", "-s", str(schedule)]


def _test_database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    host = db["HOST"] or "127.0.0.1"
    port = db["PORT"] or "5432"
    return f"postgres://{auth}@{host}:{port}/{db['NAME']}"


@pytest.fixture(scope="session")
def worker_factory(
    django_db_setup: None,
    django_db_blocker: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., Worker]]:
    """Start workers on demand; every one still running is stopped at the end."""
    logdir = tmp_path_factory.mktemp("workers")
    with django_db_blocker.unblock():
        database_url = _test_database_url()
    started: list[Worker] = []

    def start(name: str, queues: str = "default,maintenance", **kwargs: Any) -> Worker:
        w = Worker(name=name, queues=queues, database_url=database_url, logdir=logdir, **kwargs)
        started.append(w)
        w.start()
        return w

    yield start
    for w in started:
        w.stop()


@pytest.fixture
def beat_factory(
    django_db_setup: None,
    django_db_blocker: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., Beat]]:
    """Start celery beat processes (DatabaseScheduler); stopped when the test ends."""
    logdir = tmp_path_factory.mktemp("beat")
    with django_db_blocker.unblock():
        database_url = _test_database_url()
    started: list[Beat] = []

    def start(name: str, **kwargs: Any) -> Beat:
        b = Beat(name=name, database_url=database_url, logdir=logdir, **kwargs)
        started.append(b)
        b.start()
        return b

    yield start
    for b in started:
        b.stop()


@pytest.fixture(scope="session")
def worker(worker_factory: Callable[..., Worker]) -> Worker:
    """One shared worker on the default queues for the whole session."""
    return worker_factory("main")


# --- Data ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _require_postgres() -> None:
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql" and not (
        os.environ.get("SWITCHYARD_ALLOW_SQLITE_TESTS")
    ):
        pytest.exit("tests run against PostgreSQL: set DATABASE_URL (make test does)", 3)


@pytest.fixture
def routes(db: None) -> None:
    """Route rows for every declared handler subscription (as `migrate` makes them)."""
    from events.routing import sync_routes

    sync_routes()


@pytest.fixture
def hmac_source(db: None) -> Any:
    from events.models import Source

    return Source.objects.create(slug="shop", kind="hmac", secrets=["new-secret", "old-secret"])


@pytest.fixture
def api_token(db: None) -> str:
    from events.tokens import create_token

    # Every source and both scopes: what a token could do before scopes (tests/security has
    # the scoped ones).
    _, token = create_token("tests", all_sources=True, scopes=("publish", "read"))
    return token
