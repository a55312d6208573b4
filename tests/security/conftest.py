"""Fixtures for the security tests: the Procfile's web server, a fake Messages API, and real
workers pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.agents.conftest import FakeMessagesAPI
from tests.conftest import RedisServer, Worker, _test_database_url
from tests.web_server import WebServer


@pytest.fixture
def model() -> Iterator[FakeMessagesAPI]:
    server = FakeMessagesAPI()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def agent_worker(
    worker_factory: Callable[..., Worker],
    model: FakeMessagesAPI,
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., Worker]]:
    """``start(name, queue, env={...}, **worker options)``: a worker on a queue of the test's
    own whose ``anthropic`` SDK talks to the fake API (SDK retries off); ``env`` adds to or
    overrides that environment. Stopped, and its queue emptied, when the test ends."""
    # A worker inherits this process's environment; a real token there would win over the key.
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    base = {
        "ANTHROPIC_BASE_URL": model.url,
        "ANTHROPIC_API_KEY": "sk-ant-test",
        "SWITCHYARD_AGENT_PROVIDER": "anthropic",
        "SWITCHYARD_AGENT_MAX_RETRIES": "0",
    }
    started: list[tuple[Worker, str]] = []

    def start(name: str, queue: str, env: dict[str, str] | None = None, **kwargs: Any) -> Worker:
        worker = worker_factory(name, queues=queue, env={**base, **(env or {})}, **kwargs)
        started.append((worker, queue))
        return worker

    yield start
    for worker, queue in started:
        worker.stop()
        redis_server.client().delete(queue)


@pytest.fixture(scope="module")
def web_server(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebServer]:
    """gunicorn as the Procfile starts it, against the test database; one per module. Tests
    that use it need ``django_db(transaction=True)``: it sees only committed rows."""
    with django_db_blocker.unblock():
        database_url = _test_database_url()
    log_path = tmp_path_factory.mktemp("web") / "gunicorn.log"
    server = WebServer(database_url=database_url, log_path=log_path).start()
    yield server
    server.stop()
