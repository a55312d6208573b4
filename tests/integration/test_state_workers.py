"""Memory across events with real workers: two worker processes run forty deliveries of one
partition key at once, each adding one to a counter in ``ctx.state``, and no update is lost."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from events.models import Attempt, Delivery, HandlerState, Route, Source
from events.publish import publish
from tests.conftest import RedisServer, Worker, wait_until
from tests.testapp.models import HandlerCall

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

QUEUE = "state-tests"
EVENTS = 40


@pytest.fixture
def two_workers(
    worker_factory: Callable[..., Worker], redis_server: RedisServer
) -> Iterator[list[Worker]]:
    """Two worker processes of four threads each, on a queue of their own."""
    started = [worker_factory(f"state-{n}", queues=QUEUE, concurrency=4) for n in (1, 2)]
    yield started
    for worker in started:
        worker.stop()
    redis_server.client().delete(QUEUE)


def test_concurrent_deliveries_of_one_key_lose_no_state_update(
    routes: None, two_workers: list[Worker]
) -> None:
    # given the counter's route on the workers' queue, with attempts to spare: a run whose
    # compare keeps losing is retried, never dead-lettered here
    Route.objects.filter(handler="test.state.count").update(
        queue=QUEUE, max_attempts=100, backoff_base=0.1, backoff_max=1.0
    )
    source = Source.objects.create(slug="memory-workers", kind="api")

    # when forty events of one partition key arrive at once, each run pausing between its
    # read of the counter and its write so that runs overlap
    for n in range(EVENTS):
        publish(
            source=source,
            type="test.state.count",
            payload={"n": n, "pause": 0.05},
            partition_key="room-7",
        )

    # then every delivery succeeds, each saw a different count, and the counter is forty
    deliveries = Delivery.objects.filter(handler="test.state.count")
    wait_until(
        lambda: deliveries.filter(status="succeeded").count() == EVENTS,
        timeout=150,
        interval=0.5,
        what="forty counter deliveries to succeed",
    )
    counts = sorted(d.outcome["count"] for d in deliveries)
    assert counts == list(range(1, EVENTS + 1))
    row = HandlerState.objects.get(handler="test.state.count", partition_key="room-7")
    assert (row.data, row.version) == ({"count": EVENTS}, EVENTS)
    # both processes did part of the work, and runs did collide (lost compares ran again)
    workers = set(Attempt.objects.filter(delivery__in=deliveries).values_list("worker", flat=True))
    assert len({w.split("@")[0] for w in workers}) == 2
    assert HandlerCall.objects.filter(handler="test.state.count").count() > EVENTS
