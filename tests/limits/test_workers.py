"""Rate limits on real worker processes: one limit shared by two workers, an admin edit
reaching a running worker, and a deferred delivery whose message is lost."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from events.models import Attempt, Delivery, Route, Source
from events.publish import publish
from tests.conftest import Beat, Worker, wait_until
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def own_workers(redis_server: RedisServer) -> Iterator[list[Worker | Beat]]:
    """Processes a test starts, stopped when it ends (passed or not)."""
    started: list[Worker | Beat] = []
    yield started
    for process in started:
        process.stop()


def _publish(source: Source, count: int, sleep: float = 0.0) -> list[Any]:
    return [
        publish(source=source, type="test.limited", payload={"i": i, "sleep": sleep}).event
        for i in range(count)
    ]


def _starts(events: list[Any], timeout: float) -> list[float]:
    """Each event's handler start (its outcome), once every one has succeeded."""
    ids = [event.id for event in events]
    wait_until(
        lambda: Delivery.objects.filter(event_id__in=ids, status="succeeded").count() == len(ids),
        timeout=timeout,
        what=f"{len(ids)} limited deliveries to succeed",
    )
    return sorted(d.outcome["started"] for d in Delivery.objects.filter(event_id__in=ids))


def _most_in_a_second(starts: list[float]) -> int:
    """The most starts in any window [t, t + 1 s)."""
    return max(sum(1 for s in starts if t <= s < t + 1.0) for t in starts)


def test_a_shared_limit_holds_across_two_workers(
    worker_factory: Callable[..., Worker],
    own_workers: list[Worker | Beat],
    api_source: Source,
    limited_route: Route,
) -> None:
    # given a route limited to 5 starts a second (burst 1) and two workers on its queue
    Route.objects.filter(id=limited_route.id).update(
        rate_limit=5, rate_burst=1, queue="limits-shared"
    )
    for name in ("limits-a", "limits-b"):
        own_workers.append(worker_factory(name, queues="limits-shared", concurrency=4))

    # when 30 events arrive at once
    events = _publish(api_source, 30, sleep=0.3)
    starts = _starts(events, timeout=40)

    # then every one ran once, and no second held more than the limit plus the burst
    assert _most_in_a_second(starts) <= 6
    assert starts[-1] - starts[0] >= (30 - 6) / 5
    deliveries = Delivery.objects.filter(event__in=events)
    assert {(d.attempts, d.total_attempts) for d in deliveries} == {(1, 1)}
    assert sum(d.deferrals for d in deliveries) >= 24
    workers = set(Attempt.objects.filter(delivery__in=deliveries).values_list("worker", flat=True))
    assert {w.split("@")[0] for w in workers} == {"limits-a", "limits-b"}


def test_a_rate_edited_in_the_database_reaches_a_running_worker_within_its_lookup_memo(
    worker_factory: Callable[..., Worker],
    own_workers: list[Worker | Beat],
    api_source: Source,
    limited_route: Route,
) -> None:
    # given a worker keeping looked-up rows 2 s, and a route at 50 starts a second
    Route.objects.filter(id=limited_route.id).update(
        rate_limit=50, rate_burst=1, queue="limits-live"
    )
    own_workers.append(
        worker_factory(
            "limits-live", queues="limits-live", env={"SWITCHYARD_TEST_LOOKUP_CACHE_SECONDS": "2"}
        )
    )
    fast = _starts(_publish(api_source, 5), timeout=20)
    assert fast[-1] - fast[0] < 1.0

    # when the rate is lowered to 2 a second while it runs, and its memo has lapsed
    Route.objects.filter(id=limited_route.id).update(rate_limit=2)
    time.sleep(2.5)
    slow = _starts(_publish(api_source, 5), timeout=20)

    # then the next deliveries start at the new rate: half a second apart
    gaps = [b - a for a, b in itertools.pairwise(slow)]
    assert min(gaps) >= 0.45, gaps
    assert slow[-1] - slow[0] >= 1.9


def test_a_deferred_delivery_whose_message_is_lost_is_run_by_the_sweeper(
    worker_factory: Callable[..., Worker],
    beat_factory: Callable[..., Beat],
    own_workers: list[Worker | Beat],
    api_source: Source,
    limited_route: Route,
) -> None:
    # given one start every 5 s, and a worker that defers the second of two deliveries
    Route.objects.filter(id=limited_route.id).update(rate_limit=0.2, queue="limits-swept")
    doomed = worker_factory("limits-doomed", queues="limits-swept")
    events = _publish(api_source, 2)
    # (whichever of the two the worker took second)
    deferred = wait_until(
        lambda: Delivery.objects.filter(event__in=events, deferrals=1).first(),
        timeout=20,
        what="one of the deliveries to be deferred",
    )
    # (the other may still be running when the deferral is seen: the worker takes both at once)
    wait_until(
        lambda: (
            Delivery.objects.exclude(id=deferred.id)
            .filter(event__in=events, status="succeeded")
            .exists()
        ),
        timeout=20,
        what="the other delivery to succeed",
    )

    # when that worker is killed holding its message (Redis keeps it unacked for the
    # visibility timeout, over an hour), and a worker and beat run the sweeper as deployed
    doomed.kill()
    fast_sweep = {
        "SWITCHYARD_SWEEP_INTERVAL": "1",
        "SWITCHYARD_SWEEP_GRACE": "1",
        "SWITCHYARD_MAINTENANCE_QUEUE": "maintenance-limits",
    }
    sweeping = worker_factory(
        "limits-swept", queues="limits-swept,maintenance-limits", env=fast_sweep
    )
    own_workers += [sweeping, beat_factory("limits-beat", env=fast_sweep)]

    # then it runs, once, on its first attempt, not before its deferred start
    done = wait_until(
        lambda: Delivery.objects.filter(id=deferred.id, status="succeeded").first(),
        timeout=40,
        what="the sweeper to run the deferred delivery",
    )
    assert (done.attempts, done.total_attempts) == (1, 1)
    assert done.deferrals >= 1
    attempt = Attempt.objects.get(delivery=done)
    assert attempt.started_at >= deferred.next_attempt_at
    assert "sweeper: re-sent 1," in sweeping.log(tail=None)
