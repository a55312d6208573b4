"""The circuit breaker on a real worker process against a real HTTP server that fails, then
recovers: the breaker opens, holds the deliveries (no attempt spent), probes after its
cool-down, opens again on a failed probe, and closes on a good one; every event ends
processed."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from events.models import Attempt, Delivery, Resource, Route, Source
from events.publish import publish
from tests.conftest import Worker, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


class Flaky:
    """A local HTTP server answering 529 (overloaded) to its first ``failures`` calls, then
    200."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[int] = []
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with lock:
                    code = 529 if len(outer.calls) < outer.failures else 200
                    outer.calls.append(code)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/messages"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def flaky_server() -> Iterator[Flaky]:
    server = Flaky(failures=4)
    yield server
    server.close()


def test_the_breaker_opens_probes_and_closes_against_a_server_that_fails_then_recovers(
    worker_factory: Callable[..., Worker],
    api_source: Source,
    breaker_route: Route,
    flaky_server: Flaky,
) -> None:
    # given a breaker opening at 3 failures within 30 s and cooling down 2 s, and one worker
    Resource.objects.create(
        name="flaky", breaker_enabled=True, breaker_threshold=3, breaker_cooldown=2
    )
    Route.objects.filter(id=breaker_route.id).update(queue="breakers-live")
    worker = worker_factory("breakers-live", queues="breakers-live", concurrency=1)
    try:
        # when 8 events arrive while the server answers 529 to its first 4 calls
        events = [
            publish(
                source=api_source, type="test.breaker", payload={"i": i, "url": flaky_server.url}
            ).event
            for i in range(8)
        ]

        # then every event ends processed
        wait_until(
            lambda: Delivery.objects.filter(event__in=events, status="succeeded").count() == 8,
            timeout=25,
            what="8 deliveries to succeed",
        )
    finally:
        worker.stop()

    # and the server saw 4 failures and 8 successes, nothing more
    assert flaky_server.calls == [529] * 4 + [200] * 8
    attempts = list(Attempt.objects.filter(delivery__event__in=events).order_by("started_at"))
    assert [a.status for a in attempts] == ["failed"] * 4 + ["succeeded"] * 8
    starts = [a.started_at for a in attempts]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    # three failures opened it: the fourth call is the probe, after the cool-down; it failed,
    # so the fifth (the next probe) waited another cool-down; then it closed
    assert max(gaps[:2]) < 1.0, gaps
    assert gaps[2] >= 1.9, gaps
    assert gaps[3] >= 1.9, gaps
    # the deliveries held meanwhile spent no attempt on it
    deliveries = list(Delivery.objects.filter(event__in=events))
    assert sum(d.total_attempts for d in deliveries) == 12
    assert sum(d.deferrals for d in deliveries) >= 7
    reasons = {d.deferred_reason.split(":")[0] for d in deliveries if d.deferrals}
    assert reasons <= {"circuit open", "circuit half-open, probing"}
    assert "circuit flaky open" in worker.log(tail=None)


def test_a_breaker_forced_open_in_the_admin_holds_a_running_workers_deliveries_until_released(
    worker_factory: Callable[..., Worker],
    api_source: Source,
    breaker_route: Route,
) -> None:
    # given a worker keeping looked-up rows 1 s, and a breaker an operator forced open
    flaky = Resource.objects.create(
        name="flaky", breaker_enabled=True, breaker_cooldown=2, breaker_mode="open"
    )
    Route.objects.filter(id=breaker_route.id).update(queue="breakers-forced")
    worker = worker_factory(
        "breakers-forced",
        queues="breakers-forced",
        env={"SWITCHYARD_TEST_LOOKUP_CACHE_SECONDS": "1"},
    )
    try:
        # when 3 events arrive, they wait: deferred, no attempt
        events = [
            publish(source=api_source, type="test.breaker", payload={"i": i}).event
            for i in range(3)
        ]
        wait_until(
            lambda: Delivery.objects.filter(event__in=events, deferrals__gte=2).count() == 3,
            timeout=15,
            what="3 deliveries deferred twice",
        )
        assert not Attempt.objects.filter(delivery__event__in=events).exists()

        # when the operator sets it back to automatic (the admin's button)
        Resource.objects.filter(id=flaky.id).update(breaker_mode="auto")

        # then they run, each on its first attempt, within a cool-down and the memo
        wait_until(
            lambda: Delivery.objects.filter(event__in=events, status="succeeded").count() == 3,
            timeout=10,
            what="3 deliveries to succeed",
        )
    finally:
        worker.stop()
    deliveries = Delivery.objects.filter(event__in=events)
    assert {(d.attempts, d.total_attempts) for d in deliveries} == {(1, 1)}
    assert {d.deferred_reason for d in deliveries} == {"circuit forced open: flaky"}
