"""/metrics with the Procfile's gunicorn (three processes) and a real worker sharing one
multiprocess directory: every counter is the sum over all of them, and the database's gauges
are read when scraped."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from events.models import Delivery, Route, Source
from events.webhooks.hmac import HEADER, sign
from tests.conftest import Worker, _test_database_url, wait_until
from tests.web_server import WebServer

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SECRET = "metrics-secret-0123456789"


@pytest.fixture
def metrics_dir(tmp_path: Path) -> Path:
    return tmp_path / "prometheus"


@pytest.fixture
def web(metrics_dir: Path, tmp_path: Path) -> Iterator[WebServer]:
    env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    server = WebServer(
        database_url=_test_database_url(), log_path=tmp_path / "web.log", env=env
    ).start()
    yield server
    server.stop()


def post(web: WebServer, body: bytes) -> int:
    request = urllib.request.Request(  # noqa: S310  (http on loopback)
        f"{web.url}/hooks/shop",
        data=body,
        headers={"Content-Type": "application/json", HEADER: sign(SECRET, body)},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return int(response.status)


def scrape(web: WebServer) -> str:
    with urllib.request.urlopen(f"{web.url}/metrics", timeout=10) as response:  # noqa: S310
        return str(response.read().decode())


def value(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = rf"^{re.escape(name)}\{{{re.escape(wanted)}\}} (\S+)$"
    found = re.search(pattern, text, re.M)
    return float(found[1]) if found else 0.0


def test_counters_are_summed_over_the_web_and_worker_processes(
    request: pytest.FixtureRequest,
    routes: None,
    metrics_dir: Path,
    web: WebServer,
    worker_factory: Callable[..., Worker],
) -> None:
    # given a webhook source whose events one route sends to a handler that fails for good
    Source.objects.create(slug="shop", kind="hmac", secrets=[SECRET])
    # on a queue of its own, so only this worker (writing to this directory) runs them
    Route.objects.filter(handler="test.unexpected").update(queue="metrics-test")
    worker = worker_factory(
        "metrics", queues="metrics-test", env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    )
    request.addfinalizer(worker.stop)

    # when twelve signed webhooks arrive (spread over gunicorn's processes) and are handled
    bodies = [{"type": "test.unexpected", "id": f"m-{n}", "payload": {"n": n}} for n in range(12)]
    statuses = [post(web, json.dumps(body).encode()) for body in bodies]
    assert statuses == [202] * 12
    wait_until(
        lambda: Delivery.objects.filter(status="dead_lettered").count() == 12,
        timeout=60,
        what="all twelve deliveries to be dead-lettered",
    )

    # then /metrics, whichever process answers, counts all of them
    text = wait_until(
        lambda: (t := scrape(web))
        and value(t, "switchyard_attempts_finished_total", handler="test.unexpected",
                  outcome="dead_lettered") == 12
        and t,
        what="the worker's counts in /metrics",
    )  # fmt: skip
    assert (
        value(text, "switchyard_events_received_total", source="shop", type="test.unexpected") == 12
    )
    assert value(text, "switchyard_ingest_seconds_count", endpoint="hooks") == 12
    assert (
        value(
            text,
            "switchyard_attempts_finished_total",
            handler="test.unexpected",
            outcome="retrying",
        )
        == 12
    )
    assert value(text, "switchyard_handler_seconds_count", handler="test.unexpected") == 24
    # and the database's gauges
    assert value(text, "switchyard_dead_letters", handler="test.unexpected") == 12
    assert "switchyard_running 0.0" in text
    assert len(list(metrics_dir.glob("*.db"))) >= 2  # written by more than one process
