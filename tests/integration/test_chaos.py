"""Nothing is lost: a worker killed mid-handler, Redis flushed, Redis down at publish time.

Each test runs its own worker on the `chaos` queue so it can be killed or held back without
disturbing the shared worker.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from events.dispatch import send_delivery
from events.models import Attempt, Delivery, Event, Source
from events.publish import publish
from events.recovery import sweep
from tests.conftest import Beat, RedisServer, Worker, wait_until
from tests.testapp.models import HandlerCall, SideEffect

pytestmark = [pytest.mark.worker, pytest.mark.chaos, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def api_source(db: None) -> Source:
    return Source.objects.create(slug="chaos", kind="api")


def _all_processed(events: list[Event]) -> bool:
    ids = [e.id for e in events]
    return Event.objects.filter(id__in=ids, status="processed").count() == len(ids)


def test_a_killed_workers_delivery_is_taken_back_by_the_sweeper_once_its_lease_lapses(
    worker_factory: Callable[..., Worker], routes: None, api_source: Source
) -> None:
    # given a worker (leases of 2 s) running a handler that has applied its effect and is
    # still busy
    first = worker_factory("kill-1", queues="chaos", env={"SWITCHYARD_LEASE_SECONDS": "2"})
    event = publish(source=api_source, type="test.slow", payload={"sleep": 120}).event
    key = f"{event.id}:test.slow"
    wait_until(lambda: SideEffect.objects.filter(key=key).exists(), what="the first effect")
    delivery = Delivery.objects.get(event=event)
    assert delivery.status == "running"

    # when the whole worker is killed with SIGKILL (no ack, no warm shutdown)
    first.kill()
    assert Delivery.objects.get(id=delivery.id).status == "running"

    # and a new worker starts; the sweeper takes the delivery back once the lease has lapsed
    # (on Redis the killed worker's message stays unacknowledged for the visibility timeout)
    second = worker_factory("kill-2", queues="chaos")

    def finished() -> bool:
        sweep(grace=0.5)
        return Delivery.objects.get(id=delivery.id).status == "succeeded"

    wait_until(finished, timeout=60, interval=0.5, what="the delivery to complete")
    second.stop()

    # then it completed on attempt 2 and the effect happened exactly once
    delivery.refresh_from_db()
    assert delivery.total_attempts == 2
    assert delivery.outcome == {"applied": False, "attempt": 2}
    attempts = list(Attempt.objects.filter(delivery=delivery).order_by("number"))
    assert [(a.number, a.status) for a in attempts] == [(1, "lost"), (2, "succeeded")]
    assert attempts[0].error_class == "WorkerLost"
    assert SideEffect.objects.filter(key=key).count() == 1
    assert HandlerCall.objects.filter(handler="test.slow", event_id=str(event.id)).count() == 2
    assert Event.objects.get(id=event.id).status == "processed"


def test_flushall_with_deliveries_queued_the_sweeper_finishes_every_event(
    worker_factory: Callable[..., Worker],
    redis_server: RedisServer,
    routes: None,
    api_source: Source,
) -> None:
    # given ten events whose messages sit in Redis with no worker consuming their queue
    events = [
        publish(source=api_source, type="test.chaos", payload={"i": i}).event for i in range(10)
    ]
    client = redis_server.client()
    assert client.llen("chaos") == 10

    # when Redis loses everything
    client.flushall()
    assert client.llen("chaos") == 0
    chaos_worker = worker_factory("flush", queues="chaos")
    assert Delivery.objects.filter(status="pending").count() == 10

    # then the sweeper (grace 0: every pending delivery is overdue) re-sends each once...
    report = sweep(grace=0)
    assert report.resent == 10
    wait_until(lambda: _all_processed(events), timeout=30, what="all ten events processed")
    chaos_worker.stop()

    # ...and each handler ran exactly once per event
    assert HandlerCall.objects.filter(handler="test.chaos").count() == 10
    assert SideEffect.objects.filter(handler="test.chaos").count() == 10
    assert sweep(grace=0).resent == 0


def test_redis_down_while_publishing_loses_nothing(
    worker_factory: Callable[..., Worker],
    redis_server: RedisServer,
    routes: None,
    api_source: Source,
) -> None:
    # given Redis is down
    redis_server.stop()
    try:
        # when events are published, they are stored even though no message can be sent
        events = [
            publish(source=api_source, type="test.chaos", payload={"i": i}).event for i in range(3)
        ]
        assert Delivery.objects.filter(status="pending").count() == 3
    finally:
        redis_server.start()

    # then once Redis is back, the sweeper sends them and a worker finishes them
    chaos_worker = worker_factory("down", queues="chaos")
    assert sweep(grace=0).resent == 3
    wait_until(lambda: _all_processed(events), timeout=30, what="all three events processed")
    chaos_worker.stop()
    assert SideEffect.objects.filter(handler="test.chaos").count() == 3


def test_duplicate_messages_run_the_handler_once(
    worker: Any, routes: None, api_source: Source
) -> None:
    # given an event, and five extra copies of its delivery message
    event = publish(source=api_source, type="scenario.reservation.cancelled", payload={}).event
    for delivery in Delivery.objects.filter(event=event):
        for _ in range(5):
            assert send_delivery(delivery.id, queue="default", time_limit=60)

    wait_until(lambda: _all_processed([event]), timeout=30, what="the event to be processed")
    # give the extra copies time to be consumed
    ids = list(Delivery.objects.filter(event=event).values_list("id", flat=True))

    def dropped() -> int:
        log = worker.log(tail=None)
        return sum(
            len(re.findall(rf"delivery {i} is \w+; duplicate message ignored", log)) for i in ids
        )

    wait_until(lambda: dropped() >= 10, timeout=30, what="the worker to drop the ten copies")

    # then each handler ran once
    calls = sorted(HandlerCall.objects.filter(event_id=str(event.id)).values_list("handler"))
    assert calls == [("test.notify",), ("test.rebook",)]


def test_beat_runs_the_sweeper_that_recovers_a_flushed_queue(
    worker_factory: Callable[..., Worker],
    beat_factory: Callable[..., Beat],
    redis_server: RedisServer,
    routes: None,
    api_source: Source,
) -> None:
    # given queued deliveries that Redis then loses
    events = [
        publish(source=api_source, type="test.chaos", payload={"i": i}).event for i in range(5)
    ]
    redis_server.client().flushall()

    # when beat and a worker run with a one-second sweep interval and grace
    # (on a maintenance queue of their own: the session's shared worker runs the sweeper
    # with the default grace, and must not take these ticks)
    fast_sweep = {
        "SWITCHYARD_SWEEP_INTERVAL": "1",
        "SWITCHYARD_SWEEP_GRACE": "1",
        "SWITCHYARD_MAINTENANCE_QUEUE": "maintenance-beat-test",
    }
    chaos_worker = worker_factory(
        "beat-swept", queues="chaos,maintenance-beat-test", env=fast_sweep
    )
    beat = beat_factory("beat", env=fast_sweep)

    # then, with no test code calling the sweeper, every event reaches a final state
    try:
        wait_until(lambda: _all_processed(events), timeout=60, what="beat's sweeper")
    except pytest.fail.Exception:
        pytest.fail(f"beat log:\n{beat.log()}\nworker log:\n{chaos_worker.log()}")
    beat.stop()
    chaos_worker.stop()
    assert "Sending due task switchyard-sweeper (events.sweep)" in beat.log(tail=None)
    assert HandlerCall.objects.filter(handler="test.chaos").count() == 5


def test_a_handler_calling_sys_exit_does_not_wedge_the_worker(
    worker_factory: Callable[..., Worker], routes: None, api_source: Source
) -> None:
    # given a one-slot worker and a handler that raises SystemExit
    one_slot = worker_factory("exit", queues="chaos", concurrency=1)
    bad = publish(source=api_source, type="test.exit", payload={}).event
    good = publish(source=api_source, type="test.chaos", payload={}).event

    # then the failure is recorded like any other, and the next event still runs
    wait_until(
        lambda: _all_processed([good]) and Event.objects.get(id=bad.id).status == "dead_lettered",
        timeout=30,
        what="the exiting handler to dead-letter and the next event to run",
    )
    one_slot.stop()
    delivery = Delivery.objects.get(event=bad)
    assert (delivery.total_attempts, delivery.error_class) == (2, "SystemExit")
    assert HandlerCall.objects.filter(handler="test.exit").count() == 2
