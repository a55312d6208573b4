"""A worker's PostgreSQL connections are bounded by its pool, whatever its concurrency.

A real `celery worker -P threads -c 50` with ``DATABASE_POOL_MAX_SIZE=5`` runs 100 agent events
(``test.waiting_agent``: one Messages API call each through the real SDK) against
``bench.stub_model``, a Messages API stand-in that keeps every call waiting 0.5 s. While they
run, this test reads ``pg_stat_activity`` for the worker's connections (tagged with their own
``application_name``). Each thread takes a pooled connection only for its short writes and
gives it back before the model call, so 50 agents waiting at once need no more than 5
connections, and none of them waits so long for one that its delivery fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from django.db import connection, transaction

from events.models import Attempt, Delivery, Event, Source
from events.publish import publish
from handlers.models import Step
from tests.conftest import ROOT, RedisServer, Worker, wait_until
from tests.testapp.agent_handlers import WAITING_AGENT_QUEUE

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

APP_NAME = "switchyard-pool-test"
POOL_MAX = 5


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def stub_model(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    log = (tmp_path / "stub.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.stub_model", "--port", str(port), "--delay", "0.5"],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: b"listening" in (tmp_path / "stub.log").read_bytes(), timeout=20)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


class PeakConnections:
    """Counts the worker's connections in pg_stat_activity every 20 ms, on its own connection."""

    def __init__(self) -> None:
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        db = connection.settings_dict
        self._params = {
            "host": db["HOST"] or "127.0.0.1",
            "port": db["PORT"] or 5432,
            "user": db["USER"] or None,
            "dbname": db["NAME"],
        }
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with psycopg.connect(**self._params, autocommit=True) as conn:
            while not self._stop.is_set():
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                    (APP_NAME,),
                ).fetchone()
                self.peak = max(self.peak, int(row[0]) if row else 0)
                self.samples += 1
                self._stop.wait(0.02)

    def __enter__(self) -> PeakConnections:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@pytest.fixture
def pooled_worker(
    transactional_db: None,
    worker_factory: Callable[..., Worker],
    stub_model: str,
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Worker]:
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    db = connection.settings_dict
    # The test database, with the worker's connections tagged for pg_stat_activity.
    database_url = (
        f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        f"?application_name={APP_NAME}"
    )
    w = worker_factory(
        "pool",
        queues=WAITING_AGENT_QUEUE,
        concurrency=50,
        env={
            "ANTHROPIC_BASE_URL": stub_model,
            "ANTHROPIC_API_KEY": "sk-ant-test",
            "SWITCHYARD_AGENT_PROVIDER": "anthropic",
            "SWITCHYARD_AGENT_MAX_RETRIES": "0",
            "DATABASE_POOL_MAX_SIZE": str(POOL_MAX),
            # Long enough that a thread waiting for a connection never fails its delivery.
            "DATABASE_POOL_TIMEOUT": "60",
            "DATABASE_URL": database_url,
        },
    )
    yield w
    w.stop()
    redis_server.client().delete(WAITING_AGENT_QUEUE)


def test_fifty_waiting_agents_share_a_pool_of_five_connections(
    pooled_worker: Worker, stub_model: str, routes: None
) -> None:
    # given 100 agent events, committed at once so 50 of them wait on the model together
    source = Source.objects.create(slug="pool-test", kind="api")
    with PeakConnections() as sampler:
        with transaction.atomic():
            for i in range(100):
                publish(source=source, type="test.agent.wait", payload={"n": i})

        # when the worker runs them
        wait_until(
            lambda: Delivery.objects.filter(status="succeeded").count() == 100,
            timeout=120,
            interval=0.2,
            what="100 agent deliveries to succeed",
        )

    # then every event was processed once, by one attempt and one model call
    assert Event.objects.filter(status="processed").count() == 100
    assert Attempt.objects.count() == 100
    assert Attempt.objects.filter(number=1, status="succeeded").count() == 100
    assert Step.objects.filter(kind="llm", error="").count() == 100
    # and the worker never had more connections open than its pool allows
    assert sampler.samples > 50
    assert 1 <= sampler.peak <= POOL_MAX, sampler.peak
    # while far more agents than that waited on the model at the same moment: no thread
    # kept a connection through its wait
    with urllib.request.urlopen(f"{stub_model}/stats", timeout=5) as answer:  # noqa: S310
        stats = json.loads(answer.read())
    assert stats["answered"] == 100
    assert stats["peak_waiting"] >= 4 * POOL_MAX, stats


def test_pool_is_sized_from_the_environment() -> None:
    code = (
        "from agents_project import settings as s; print(s.DATABASES['default']['OPTIONS']['pool'])"
    )
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://u@db.internal/app",
        "DATABASE_POOL_MIN_SIZE": "3",
        "DATABASE_POOL_MAX_SIZE": "17",
        "DATABASE_POOL_TIMEOUT": "4.5",
        "SECRET_KEY": "x",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "{'min_size': 3, 'max_size': 17, 'timeout': 4.5}"


def _postgres_socket_owners() -> set[int]:
    """Pids of the processes holding a TCP connection to PostgreSQL's port on this host."""
    out = subprocess.run(["ss", "-tnpH"], capture_output=True, text=True, check=True).stdout
    owners: set[int] = set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[4].endswith(":5432"):
            owners.update(int(pid) for pid in re.findall(r"pid=(\d+)", line))
    return owners


def test_prefork_children_connect_on_their_own_and_the_parent_holds_none(
    worker_factory: Callable[..., Worker], routes: None
) -> None:
    # given a prefork worker (the pool is on by default) that has run deliveries
    w = worker_factory("prefork-pool", queues="chaos", pool="prefork", concurrency=2)
    source = Source.objects.create(slug="prefork-pool", kind="api")
    with transaction.atomic():
        for i in range(10):
            publish(source=source, type="test.noop", payload={"n": i})
    wait_until(
        lambda: Delivery.objects.filter(status="succeeded").count() == 10,
        timeout=60,
        what="10 deliveries on the prefork worker",
    )

    # then every one ran once, and the parent (which forks the children) holds no database
    # connection a child could inherit: each child's pool is made after its fork
    assert Attempt.objects.filter(number=1, status="succeeded").count() == 10
    assert w.pid not in _postgres_socket_owners()
    w.stop()
