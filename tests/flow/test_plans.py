"""On PostgreSQL an ordered route's key order reads the indexes of migration events/0024: the
key's events (event_key_recv) when the key has few, the route's open deliveries
(delivery_route_open) when the key's history is long. Never every event in receipt order,
which an ORDER BY ... LIMIT 1 led the planner to (events.transitions.flow._first)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from events.models import Delivery, Event, Route, Source
from events.transitions.flow import open_before, open_of_key

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="plans of PostgreSQL"),
]

# Events in all, over this many keys, and the one key with a long history.
EVENTS = 60_000
KEYS = 5_000
HOT_EVENTS = 3_000


def _fill(source: Source, ordered: Route, other: Route) -> None:
    """EVENTS events over KEYS keys, half delivered to each route, one in fifty not done yet;
    and HOT_EVENTS of the key "hot" on the ordered route, all done but the last three."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO events_event (id, source_id, external_id, type, schema_version, "
            "partition_key, payload, received_at, status, status_changed_at, depth) "
            "SELECT md5(%s || i)::uuid, %s, %s || i, 'plan.order', 1, "
            "CASE WHEN i > %s THEN 'hot' ELSE 'key-' || (i %% %s) END, '{}', "
            "now() - make_interval(secs => %s - i), 'processed', now(), 0 "
            "FROM generate_series(1, %s) i",
            ["plan", source.id, "x", EVENTS, KEYS, EVENTS + HOT_EVENTS, EVENTS + HOT_EVENTS],
        )
        cursor.execute(
            "INSERT INTO events_delivery (event_id, route_id, handler, status, attempts, "
            "total_attempts, next_attempt_at, resends, last_error, error_class, created_at, "
            "updated_at, lease_holder, resolved_by, deferrals, deferred_reason, held_by) "
            "SELECT md5(%s || i)::uuid, CASE WHEN i > %s OR i %% 2 = 0 THEN %s ELSE %s END, "
            "'test.noop', CASE WHEN (i <= %s AND i %% 50 = 0) OR i > %s - 3 "
            "THEN 'pending' ELSE 'succeeded' END, "
            "1, 1, now(), 0, '', '', now(), now(), '', '', 0, '', '' "
            "FROM generate_series(1, %s) i",
            [
                "plan",
                EVENTS,
                ordered.id,
                other.id,
                EVENTS,
                EVENTS + HOT_EVENTS,
                EVENTS + HOT_EVENTS,
            ],
        )
        cursor.execute("ANALYZE events_event")
        cursor.execute("ANALYZE events_delivery")


@pytest.fixture
def ordered(db: None) -> Route:
    source = Source.objects.create(slug="plans", kind="api")
    ordered = Route.objects.create(
        name="ordered", event_type="plan.order", handler="test.noop", ordered_by_key=True
    )
    other = Route.objects.create(name="other", event_type="plan.order", handler="test.stamp")
    _fill(source, ordered, other)
    return ordered


def _newest(route: Route, key: str) -> tuple[Delivery, Event]:
    delivery = (
        Delivery.objects.select_related("event")
        .filter(route=route, event__partition_key=key, status="pending")
        .order_by("-event__received_at")
        .first()
    )
    assert delivery is not None
    return delivery, delivery.event


def _scans(plan: str) -> list[str]:
    """The plan's scan lines, without costs: "Bitmap Index Scan on event_key_recv"."""
    return [line.split("(")[0].strip(" ->") for line in plan.splitlines() if "Scan" in line]


def test_a_key_with_few_events_is_read_from_its_events_by_key(ordered: Route) -> None:
    key = f"key-{50 % KEYS}"
    delivery, event = _newest(ordered, key)

    for plan in (
        open_before(ordered, key, delivery.id, event).explain(),
        open_of_key(ordered, key).explain(),
    ):
        scans = _scans(plan)
        assert any("event_key_recv" in scan for scan in scans), plan
        assert not any("Seq Scan" in scan or "event_recv_status" in scan for scan in scans), plan


def test_a_key_with_a_long_history_is_read_from_the_routes_open_deliveries(
    ordered: Route,
) -> None:
    delivery, event = _newest(ordered, "hot")

    for plan in (
        open_before(ordered, "hot", delivery.id, event).explain(),
        open_of_key(ordered, "hot").explain(),
    ):
        scans = _scans(plan)
        assert any("delivery_route_open" in scan for scan in scans), plan
        assert not any("Seq Scan" in scan or "event_recv_status" in scan for scan in scans), plan


def test_the_earliest_open_delivery_of_a_long_history_is_found(ordered: Route) -> None:
    # given the hot key's three open deliveries, the newest asking what is before it
    delivery, event = _newest(ordered, "hot")
    now = timezone.now()

    rows: Any = list(open_before(ordered, "hot", delivery.id, event))

    assert len(rows) == 2
    assert all(received < event.received_at <= now for _, received, _ in rows)
