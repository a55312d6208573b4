"""Flow control inside the claim: a route's concurrency cap and its order per partition key.

A check before the claim alone races (two workers both see N-1 running), so both are decided
in the claim's transaction under a PostgreSQL advisory lock held until it commits: one per
(route, partition key) for the order, one per route for the cap. The claim marks the delivery
running before the lock is released, so the next claimer's count sees it.

A delivery that may not start is held: deferred like a rate-limited one (events.transitions.
deferral: no attempt spent, never dead-lettered) with a long fallback wait
(``SWITCHYARD_FLOW_RECHECK_SECONDS``), ``held_by`` saying what holds it. What frees its way
wakes it: when a delivery of the route ends, fails for a retry, is taken back or dead-lettered,
or a dead letter is requeued or resolved, ``wake_after_commit`` sends the message of the next
held delivery (the route's oldest for the cap; the key's next for the order) at once, under
the same lock, so a hold committed just before is seen. A lost wake-up costs the fallback
wait, never the delivery: its own message comes back then, and the sweeper re-sends a lost one.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from events import conf

from .. import dispatch
from ..lookups import Memo
from ..metrics import DEFERRALS
from ..models import Delivery, DeliveryStatus, Event, Route
from .policy import route_settings

log = logging.getLogger("switchyard.pipeline")

# Advisory lock namespaces (the two-int form): the route's cap, and a key of an ordered route.
CONCURRENCY_LOCK = 0x5377_0001
ORDER_LOCK = 0x5377_0002
WAITING = (DeliveryStatus.PENDING, DeliveryStatus.RETRYING)
HELD_BY_CAP = "concurrency"
HELD_BY_KEY = "key"


def controlled(route: Route | None) -> bool:
    return route is not None and (route.max_concurrency is not None or route.ordered_by_key)


# The queues of the routes with flow control, through the lookup memo: a message from one of
# them goes straight to the full claim, whose flow check it needs (events.transitions.claiming).
FLOW_QUEUES = Memo[frozenset[str]]()


def queue_has_flow_control(queue: str) -> bool:
    def load() -> frozenset[str]:
        flowing = Route.objects.filter(Q(max_concurrency__isnull=False) | Q(ordered_by_key=True))
        return frozenset(flowing.values_list("queue", flat=True))

    return queue in (FLOW_QUEUES.get("", load) or ())


def _ordered_key(route: Route, key: str) -> bool:
    return route.ordered_by_key and bool(key)


def _lock(namespace: int, route_id: int, key: str = "") -> None:
    if connection.vendor != "postgresql":
        return  # SQLite: one writer at a time already
    with connection.cursor() as cursor:
        if key:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [namespace, f"{route_id}:{key}"]
            )
        else:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [namespace, route_id])


def _blocking(route: Route) -> tuple[str, ...]:
    """The statuses of an earlier delivery that keep a key's later ones waiting."""
    if route.on_dead_letter == "block":
        return (*WAITING, DeliveryStatus.RUNNING, DeliveryStatus.DEAD_LETTERED)
    return (*WAITING, DeliveryStatus.RUNNING)


def _first(deliveries: Any) -> tuple[Any, ...] | None:
    """The earliest of (id, received_at, ...) rows: by its event's received_at, then its id.

    Sorted here, not by the query: with ORDER BY received_at LIMIT 1, PostgreSQL walks the
    key's (or every) event in received_at order hoping to meet an open delivery early, and a
    key with a long history of finished ones was read whole on every claim (285 ms for 30,000
    events). Without them it reads the route's open deliveries (index delivery_route_open) or
    the key's events (event_key_recv), whichever is fewer: tests/flow/test_plans.py."""
    rows = list(deliveries)
    return min(rows, key=lambda row: (row[1], row[0])) if rows else None


def open_before(route: Route, key: str, delivery_id: int, event: Event) -> QuerySet[Any]:
    """(id, received_at, status) of the route's deliveries of ``key`` received before this one
    (its event's received_at, then the delivery id) and not done yet; unordered (``_first``)."""
    return (
        Delivery.objects.filter(
            route_id=route.id,
            event__partition_key=key,
            status__in=_blocking(route),
            event__received_at__lte=event.received_at,
        )
        .exclude(id=delivery_id)
        .exclude(event__received_at=event.received_at, id__gt=delivery_id)
        .order_by()
        .values_list("id", "event__received_at", "status")
    )


def open_of_key(route: Route, key: str) -> QuerySet[Any]:
    """(id, received_at, held_by, status) of the route's deliveries of ``key`` not done yet;
    unordered (``_first``)."""
    return (
        Delivery.objects.filter(route_id=route.id, event__partition_key=key)
        .filter(status__in=_blocking(route))
        .order_by()
        .values_list("id", "event__received_at", "held_by", "status")
    )


def _earlier(route: Route, key: str, delivery_id: int, event: Event) -> tuple[int, str] | None:
    """(id, status) of the first delivery of the route and key received before this one and
    not done yet."""
    first = _first(open_before(route, key, delivery_id, event))
    return (first[0], first[2]) if first is not None else None


def check(delivery: Delivery, now: datetime) -> tuple[str, str] | None:
    """Inside the claim's transaction, for a waiting delivery: None (it may start; the locks
    stay held until the claim commits), or what holds it and why."""
    route = delivery.route
    if route is None or not controlled(route):
        return None
    key = delivery.event.partition_key
    if _ordered_key(route, key):
        _lock(ORDER_LOCK, route.id, key)
        first = _earlier(route, key, delivery.id, delivery.event)
        if first is not None:
            first_id, status = first
            if status == DeliveryStatus.DEAD_LETTERED:
                return HELD_BY_KEY, f"key {key} blocked by dead letter {first_id}"
            return HELD_BY_KEY, f"waiting for delivery {first_id} of key {key}"
    cap = route.max_concurrency
    if cap is not None:
        _lock(CONCURRENCY_LOCK, route.id)
        running = (
            Delivery.objects.filter(
                route_id=route.id, status=DeliveryStatus.RUNNING, lease_expires_at__gte=now
            )
            .exclude(id=delivery.id)
            .count()
        )
        if running >= cap:
            return HELD_BY_CAP, f"route at its concurrency {cap}"
    return None


def hold(delivery: Delivery, held_by: str, reason: str, now: datetime) -> float | None:
    """Defer the waiting delivery (as read) by the fallback wait; the wait, or None if the row
    changed meanwhile."""
    # Spread so a crowd held at once does not come back at once.
    wait = float(conf.FLOW_RECHECK_SECONDS.get()) * (1 + 0.2 * random.random())
    until = now + timedelta(seconds=wait)
    won = Delivery.objects.filter(
        id=delivery.id, status=delivery.status, total_attempts=delivery.total_attempts
    ).update(
        next_attempt_at=until,
        enqueued_at=now,
        deferred_until=None,
        deferrals=F("deferrals") + 1,
        deferred_reason=reason[:200],
        held_by=held_by,
        resends=0,
        resend_after=None,
    )
    if not won:
        return None
    DEFERRALS.labels(delivery.handler).inc()
    log.info("delivery %s held %.1f s (%s)", delivery.id, wait, reason)
    route = delivery.route
    if held_by == HELD_BY_KEY and route is not None and route.max_concurrency is not None:
        # Woken for a free slot but blocked by its key: pass the slot on to the next held
        # one, or it would stay free until a fallback wait ends.
        route_id, cap = route.id, route.max_concurrency
        transaction.on_commit(lambda: wake(route_id, "", cap), robust=True)
    return wait


def wake_after_commit(delivery: Delivery) -> None:
    """Once the current transaction commits, send the next held delivery of ``delivery``'s
    route (and of its key on an ordered route) at once. Nothing for a route without flow
    control: then not even its event is read."""
    route = delivery.route
    if route is None or not controlled(route):
        return
    key = delivery.event.partition_key
    route_id, ordered, capped = route.id, _ordered_key(route, key), route.max_concurrency
    transaction.on_commit(lambda: wake(route_id, key if ordered else "", capped), robust=True)


def wake(route_id: int, key: str, capped: int | None) -> list[int]:
    """Send the next held delivery of ``key`` (an ordered route's) and, for a capped route,
    its oldest held one. Returns the ids woken."""
    woken: list[int] = []
    with transaction.atomic():
        if key:
            _lock(ORDER_LOCK, route_id, key)
            route = Route.objects.filter(id=route_id).first()
            if route is not None:
                first = _first(open_of_key(route, key))
                if first is not None and first[2] and first[3] in WAITING:
                    woken += _ring(first[0])
        if capped is not None:
            _lock(CONCURRENCY_LOCK, route_id)
            oldest = (
                Delivery.objects.filter(route_id=route_id, held_by=HELD_BY_CAP, status__in=WAITING)
                .order_by("id")
                .values_list("id", flat=True)
                .first()
            )
            if oldest is not None and oldest not in woken:
                woken += _ring(oldest)
    return woken


def _ring(delivery_id: int) -> list[int]:
    """Make the held delivery due now and send its message after this commit."""
    now = timezone.now()
    delivery = Delivery.objects.select_related("route").filter(id=delivery_id).first()
    if delivery is None:
        return []
    Delivery.objects.filter(id=delivery_id, status__in=WAITING).update(
        next_attempt_at=now, enqueued_at=now
    )
    rs = route_settings(delivery)
    jobs: Any = [(delivery_id, rs.queue, rs.time_limit)]
    transaction.on_commit(lambda: dispatch.enqueue(jobs), robust=True)
    log.info("delivery %s woken (%s)", delivery_id, delivery.held_by)
    return [delivery_id]


def describe(delivery: Delivery) -> str:
    """What the route's flow control does with this delivery, for its admin page."""
    route = delivery.route
    if delivery.status in WAITING and delivery.held_by:
        return f"held ({delivery.held_by}): {delivery.deferred_reason}"
    if (
        delivery.status == DeliveryStatus.DEAD_LETTERED
        and route is not None
        and _ordered_key(route, delivery.event.partition_key)
    ):
        if route.on_dead_letter == "block":
            return (
                f"blocks key {delivery.event.partition_key}: its later deliveries wait until "
                "this dead letter is requeued or resolved"
            )
        return f"skipped: key {delivery.event.partition_key}'s later deliveries go on"
    return ""
