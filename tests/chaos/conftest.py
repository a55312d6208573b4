"""A deployment to break: web (the Procfile's gunicorn), workers and beat as deployed, on Redis
or RabbitMQ, with the project's default lease, sweep interval and grace. The tests only ingest
over HTTP, break things, and read the ledger; they never call the sweeper or run a task.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from events.models import Delivery, Event
from tests.conftest import Beat, RedisServer, Worker, _test_database_url, wait_until
from tests.testapp.models import HandlerCall, SideEffect
from tests.web_server import WebServer

RABBIT_VHOST = "switchyard-test"
MAINTENANCE_QUEUE = "maintenance-chaos"
FINAL = ("processed", "dead_lettered")


def _rabbitmqctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, timeout=120, check=check
    )


def _rabbit_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=1):
            return True
    except OSError:
        return False


class Broker:
    """The broker a deployment runs on, and how to break it."""

    def __init__(self, kind: str, url: str, redis_server: RedisServer) -> None:
        self.kind = kind
        self.url = url
        self.redis_server = redis_server

    def stop(self) -> None:
        if self.kind == "redis":
            self.redis_server.stop()
        else:
            _rabbitmqctl("stop_app")

    def start(self) -> None:
        if self.kind == "redis":
            self.redis_server.start()
        else:
            _rabbitmqctl("start_app")
            _rabbitmqctl("await_startup")

    def restart(self) -> None:
        """Redis without persistence (everything queued is gone); RabbitMQ's application
        stopped and started (durable queues, persistent messages)."""
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """A vhost of the tests' own on the machine's RabbitMQ (scripts/ensure-services starts it),
    made afresh each session so nothing queued earlier is delivered."""
    wait_until(_rabbit_answers, timeout=60, interval=0.5, what="RabbitMQ on 127.0.0.1:5672")
    _rabbitmqctl("await_startup")
    _rabbitmqctl("delete_vhost", RABBIT_VHOST, check=False)
    _rabbitmqctl("add_vhost", RABBIT_VHOST)
    _rabbitmqctl("set_permissions", "-p", RABBIT_VHOST, "guest", ".*", ".*", ".*")
    return f"amqp://guest:guest@127.0.0.1:5672/{RABBIT_VHOST}"


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request: pytest.FixtureRequest, redis_server: RedisServer) -> Iterator[Broker]:
    if request.param == "redis":
        b = Broker("redis", redis_server.url, redis_server)
    else:
        b = Broker("rabbitmq", request.getfixturevalue("rabbitmq_url"), redis_server)
    yield b
    # A test that stops its broker starts it again, even when it failed half way.
    if b.kind == "redis" and not redis_server._answers():
        redis_server.start()
    if b.kind == "rabbitmq" and not _rabbit_answers():
        _rabbitmqctl("start_app", check=False)
        _rabbitmqctl("await_startup", check=False)


@dataclass
class Deployment:
    broker: Broker
    database_url: str
    logdir: Path
    token: str
    web: WebServer | None = None
    processes: list[Worker | Beat] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {
            "SWITCHYARD_TEST_BROKER_URL": self.broker.url,
            "SWITCHYARD_MAINTENANCE_QUEUE": MAINTENANCE_QUEUE,
        }

    def start_web(self) -> WebServer:
        self.web = WebServer(
            database_url=self.database_url,
            log_path=self.logdir / f"web-{time.monotonic_ns()}.log",
            env=self.env,
        ).start()
        return self.web

    def start_worker(self, name: str, concurrency: int = 8, queues: str = "chaos") -> Worker:
        w = Worker(
            name=name,
            queues=f"{queues},{MAINTENANCE_QUEUE}",
            concurrency=concurrency,
            database_url=self.database_url,
            logdir=self.logdir,
            env=self.env,
        )
        self.processes.append(w)
        w.start()
        return w

    def start_beat(self) -> Beat:
        b = Beat(name="beat", database_url=self.database_url, logdir=self.logdir, env=self.env)
        self.processes.append(b)
        b.start()
        return b

    def ingest(self, events: list[tuple[str, dict[str, Any]]], *, prefix: str) -> list[str]:
        """POST each event to /api/events; returns the ids of those answered 202. Anything
        else fails the test, unless it is a 503 with Retry-After (then it is tried again)."""
        assert self.web is not None
        accepted = []
        for n, (type_, payload) in enumerate(events):
            body = {"type": type_, "source": "chaos", "id": f"{prefix}-{n}", "payload": payload}
            # (the API answers 202 for a new event, 200 for a duplicate id: ids are unique here)
            for _ in range(100):
                status, answer, headers = _post(f"{self.web.url}/api/events", self.token, body)
                if status == 503 and "Retry-After" in headers:
                    time.sleep(0.5)
                    continue
                break
            assert status == 202, (status, answer)
            accepted.append(answer["id"])
        return accepted

    def stop(self) -> None:
        for p in self.processes:
            p.stop()
        if self.web is not None:
            self.web.stop()


def _post(url: str, token: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], Any]:
    request = urllib.request.Request(  # noqa: S310 - loopback
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}"), error.headers


@pytest.fixture
def deployment(
    broker: Broker, routes: None, tmp_path: Path, django_db_blocker: Any
) -> Iterator[Deployment]:
    from events.models import Source
    from events.tokens import create_token

    Source.objects.create(slug="chaos", kind="api")
    _, token = create_token("chaos", sources=["chaos"], scopes=("publish", "read"))
    d = Deployment(broker, _test_database_url(), tmp_path, token)
    yield d
    d.stop()


@dataclass(frozen=True)
class Ledger:
    accepted: int
    statuses: dict[str, int]
    effects_once: int
    effects_missing: list[str]
    handler_runs: int

    @property
    def final(self) -> int:
        return sum(n for status, n in self.statuses.items() if status in FINAL)


def ledger(event_ids: list[str], handler: str) -> Ledger:
    """Jepsen-style bookkeeping: what became of every accepted event and its effect."""
    statuses = Counter(Event.objects.filter(id__in=event_ids).values_list("status", flat=True))
    processed = {
        str(e)
        for e in Delivery.objects.filter(
            event_id__in=event_ids, handler=handler, status="succeeded"
        ).values_list("event_id", flat=True)
    }
    keys = {f"{e}:{handler}" for e in processed}
    present = set(SideEffect.objects.filter(key__in=keys).values_list("key", flat=True))
    return Ledger(
        accepted=len(event_ids),
        statuses=dict(statuses),
        effects_once=len(present),
        effects_missing=sorted(keys - present),
        handler_runs=HandlerCall.objects.filter(handler=handler, event_id__in=event_ids).count(),
    )


def wait_for_ledger(
    event_ids: list[str], handler: str, *, timeout: float, what: str
) -> tuple[Ledger, float]:
    """Wait until every accepted event is final; returns the ledger and how long it took."""
    started = time.monotonic()
    wait_until(
        lambda: ledger(event_ids, handler).final == len(event_ids),
        timeout=timeout,
        interval=0.5,
        what=what,
    )
    took = time.monotonic() - started
    result = ledger(event_ids, handler)
    print(
        f"ledger: accepted {result.accepted}, statuses {result.statuses}, "
        f"effects once {result.effects_once}, missing {len(result.effects_missing)}, "
        f"handler runs {result.handler_runs}; final after {took:.1f} s"
    )
    return result, took


def assert_exactly_once(result: Ledger) -> None:
    assert result.statuses == {"processed": result.accepted}, result.statuses
    assert result.effects_missing == []
    assert result.effects_once == result.accepted


def running_on(name: str) -> int:
    """Deliveries running an attempt taken by worker ``name``."""
    from events.models import Attempt

    return Attempt.objects.filter(status="running", worker__startswith=f"{name}@").count()
