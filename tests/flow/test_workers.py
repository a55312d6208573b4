"""A route's concurrency cap and key order on two real worker processes: the cap sampled from
the database throughout, the order of each key's successes, and a worker killed mid-key."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection

from events.models import Attempt, Delivery, Route, Source
from events.publish import publish
from tests.conftest import Beat, Worker, wait_until
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

QUEUES = ("flow-cap", "flow-order", "flow-kill", "maintenance-flow")
KEYS = ("acme", "bolt", "cork")


@pytest.fixture
def own_workers(redis_server: RedisServer) -> Iterator[list[Worker | Beat]]:
    """Processes a test starts, stopped when it ends (passed or not); its queues emptied."""
    started: list[Worker | Beat] = []
    redis_server.client().delete(*QUEUES)
    yield started
    for process in started:
        process.stop()
    redis_server.client().delete(*QUEUES)


class Sampler(threading.Thread):
    """Counts the route's running deliveries in the database every 20 ms."""

    def __init__(self, route_id: int) -> None:
        super().__init__(daemon=True)
        self.route_id = route_id
        self.counts: list[int] = []
        self.done = threading.Event()

    def run(self) -> None:
        try:
            while not self.done.is_set():
                running = Delivery.objects.filter(route_id=self.route_id, status="running")
                self.counts.append(running.count())
                time.sleep(0.02)
        finally:
            connection.close()


def _all_succeeded(events: list[Any], timeout: float) -> list[Delivery]:
    ids = [event.id for event in events]
    wait_until(
        lambda: Delivery.objects.filter(event_id__in=ids, status="succeeded").count() == len(ids),
        timeout=timeout,
        interval=0.1,
        what=f"{len(ids)} deliveries to succeed",
    )
    return list(Delivery.objects.filter(event_id__in=ids).select_related("event"))


def test_never_more_than_the_cap_run_at_once_across_two_workers(
    worker_factory: Callable[..., Worker],
    own_workers: list[Worker | Beat],
    flow_source: Source,
    flow_route: Route,
) -> None:
    # given a route capped at 2, and two workers of 4 threads each on its queue
    Route.objects.filter(id=flow_route.id).update(max_concurrency=2, queue="flow-cap")
    for name in ("flow-cap-a", "flow-cap-b"):
        own_workers.append(worker_factory(name, queues="flow-cap", concurrency=4))
    sampler = Sampler(flow_route.id)
    sampler.start()

    # when 20 events of 0.3 s each arrive at once
    began = time.monotonic()
    events = [
        publish(source=flow_source, type="test.flow", payload={"sleep": 0.3}).event
        for _ in range(20)
    ]
    deliveries = _all_succeeded(events, timeout=30)
    took = time.monotonic() - began
    sampler.done.set()
    sampler.join(timeout=5)

    # then the database never showed more than 2 running, and 2 did run at once
    assert max(sampler.counts) == 2, sampler.counts
    assert len(sampler.counts) > 100
    # each on its first attempt; the held ones woken as a slot freed, not after their 30 s
    assert {(d.attempts, d.total_attempts) for d in deliveries} == {(1, 1)}
    assert sum(d.deferrals for d in deliveries) >= 1
    assert took < 15, took
    workers = set(Attempt.objects.filter(delivery__in=deliveries).values_list("worker", flat=True))
    assert {w.split("@")[0] for w in workers} == {"flow-cap-a", "flow-cap-b"}


def _publish_keys(
    source: Source,
    per_key: int,
    fails: set[int],
    slow: dict[tuple[str, int], float] | None = None,
) -> list[Any]:
    """``per_key`` events of each key, the keys interleaved, each 0.05 s long; the ``fails``
    seqs fail once; ``slow`` (key, seq) run that many seconds more on their first attempt."""
    slow = slow or {}
    return [
        publish(
            source=source,
            type="test.flow",
            payload={
                "seq": seq,
                "sleep": 0.05,
                "fail_once": seq in fails,
                "sleep_first": slow.get((key, seq), 0),
            },
            partition_key=key,
        ).event
        for seq in range(per_key)
        for key in KEYS
    ]


def _check_order(deliveries: list[Delivery], per_key: int) -> None:
    """Each key's successes ran one at a time in receipt order; keys overlapped."""
    spans = {}
    for key in KEYS:
        mine = sorted(
            (d for d in deliveries if d.event.partition_key == key),
            key=lambda d: d.outcome["started"],
        )
        assert [d.outcome["seq"] for d in mine] == list(range(per_key)), key
        for before, after in itertools.pairwise(mine):
            assert before.outcome["ended"] <= after.outcome["started"], key
        spans[key] = (mine[0].outcome["started"], mine[-1].outcome["ended"])
    # the keys ran in parallel: every key's span overlaps every other's
    assert max(s for s, _ in spans.values()) < min(e for _, e in spans.values()), spans


def test_each_key_runs_in_receipt_order_with_retries_while_keys_run_in_parallel(
    worker_factory: Callable[..., Worker],
    own_workers: list[Worker | Beat],
    flow_source: Source,
    flow_route: Route,
) -> None:
    # given an ordered route and two workers on its queue
    Route.objects.filter(id=flow_route.id).update(ordered_by_key=True, queue="flow-order")
    for name in ("flow-order-a", "flow-order-b"):
        own_workers.append(worker_factory(name, queues="flow-order", concurrency=4))

    # when 3 keys x 8 events arrive interleaved, some failing once
    began = time.monotonic()
    events = _publish_keys(flow_source, 8, fails={1, 4, 5})
    deliveries = _all_succeeded(events, timeout=30)

    # then per key the successes ran one at a time in receipt order, the retries included
    _check_order(deliveries, 8)
    assert sorted(d.total_attempts for d in deliveries) == [1] * 15 + [2] * 9
    assert time.monotonic() - began < 20
    workers = set(Attempt.objects.filter(delivery__in=deliveries).values_list("worker", flat=True))
    assert {w.split("@")[0] for w in workers} == {"flow-order-a", "flow-order-b"}


def test_a_key_whose_worker_is_killed_mid_run_completes_in_order(
    worker_factory: Callable[..., Worker],
    beat_factory: Callable[..., Beat],
    own_workers: list[Worker | Beat],
    flow_source: Source,
    flow_route: Route,
) -> None:
    # given an ordered route, two workers with 2 s leases and beat's sweeper every second
    Route.objects.filter(id=flow_route.id).update(ordered_by_key=True, queue="flow-kill")
    fast = {
        "SWITCHYARD_LEASE_SECONDS": "2",
        "SWITCHYARD_SWEEP_INTERVAL": "1",
        "SWITCHYARD_SWEEP_GRACE": "1",
        "SWITCHYARD_MAINTENANCE_QUEUE": "maintenance-flow",
    }
    workers = {
        name: worker_factory(name, queues="flow-kill,maintenance-flow", env=fast)
        for name in ("flow-kill-a", "flow-kill-b")
    }
    own_workers += [*workers.values(), beat_factory("flow-beat", env=fast)]

    # when acme's third event is running (slow on its first attempt) and its worker is killed
    events = _publish_keys(flow_source, 6, fails=set(), slow={("acme", 2): 30})
    third = Delivery.objects.get(event=events[2 * len(KEYS)])
    wait_until(
        lambda: Delivery.objects.filter(id=third.id, status="running").exists(),
        timeout=20,
        what="acme's third delivery to run",
    )
    holder = Attempt.objects.get(delivery=third, number=1).worker.split("@")[0]
    workers[holder].kill()

    # then the sweeper takes it back, it runs again, and acme completes in order
    deliveries = _all_succeeded(events, timeout=35)
    _check_order(deliveries, 6)
    statuses = list(
        Attempt.objects.filter(delivery=third).order_by("number").values_list("status", flat=True)
    )
    assert statuses == ["lost", "succeeded"]
