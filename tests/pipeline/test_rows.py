"""events/rows.py reads and writes exactly what the ORM does (on PostgreSQL here; the SQLite
path is run by test_sqlite_pipeline.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db.models import Model
from django.utils import timezone

from events import rows
from events.models import Attempt, Delivery, Event, Route, Source
from events.publish import publish
from handlers.models import Step

pytestmark = pytest.mark.django_db


def values(obj: Model) -> dict[str, Any]:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


@pytest.fixture
def delivery(routes: None, monkeypatch: pytest.MonkeyPatch) -> Delivery:

    monkeypatch.setattr("events.dispatch.enqueue", lambda jobs: None)
    source = Source.objects.create(
        slug="rows", kind="hmac", secrets=["s3cret-value"], settings={"a": [1, "ü"]}
    )
    event = publish(
        source=source,
        type="test.noop",
        payload={"nested": {"list": [1, 2.5, None, "\u2603"]}, "ok": True},
        partition_key="order-7",
    ).event
    return Delivery.objects.get(event=event)


def test_fetch_delivery_reads_what_select_related_reads(delivery: Delivery) -> None:
    orm = Delivery.objects.select_related("route", "event__source").get(id=delivery.id)

    fetched = rows.fetch_delivery(delivery.id)

    assert fetched is not None and fetched.route is not None and orm.route is not None
    assert values(fetched) == values(orm)
    assert values(fetched.route) == values(orm.route)
    assert values(fetched.event) == values(orm.event)
    assert values(fetched.event.source) == values(orm.event.source)
    assert fetched.event.payload == {"nested": {"list": [1, 2.5, None, "\u2603"]}, "ok": True}


def test_fetch_delivery_of_a_deleted_route_has_no_route(delivery: Delivery) -> None:
    Route.objects.filter(id=delivery.route_id).delete()

    fetched = rows.fetch_delivery(delivery.id)

    assert fetched is not None
    assert (fetched.route, fetched.route_id, fetched.handler) == (None, None, "test.noop")


def test_fetch_delivery_of_a_missing_id_is_none(delivery: Delivery) -> None:
    assert rows.fetch_delivery(delivery.id + 1000) is None


def test_insert_writes_what_create_writes(delivery: Delivery) -> None:
    started = timezone.now()
    attempt_id = rows.insert_attempt(delivery, 1, started, "w@host")
    step = Step(attempt_id=attempt_id, number=1, kind="tool", name="lookup", input={"k": "v"})

    step_id = rows.insert(step)

    attempt = Attempt.objects.get(id=attempt_id)
    assert (attempt.delivery_id, attempt.number, attempt.status) == (delivery.id, 1, "running")
    assert (attempt.started_at, attempt.worker, attempt.outcome) == (started, "w@host", None)
    stored = Step.objects.get(id=step_id)
    assert (stored.pk, stored.input, stored.output) == (step.pk, {"k": "v"}, None)
    assert stored.name == "lookup"
    assert stored.created_at == step.created_at


def test_update_sets_values_and_expressions_only_where_asked(delivery: Delivery) -> None:
    before = Delivery.objects.get(id=delivery.id)
    lease = timezone.now() + timedelta(seconds=30)

    missed = rows.update(Delivery, "id = %s AND status = %s", [delivery.id, "running"], {})
    changed = rows.update(
        Delivery,
        "id = %s AND status = %s",
        [delivery.id, "pending"],
        {"status": "running", "lease_expires_at": lease, "outcome": {"x": [1]}},
        raw={"attempts": "attempts + 1"},
    )

    after = Delivery.objects.get(id=delivery.id)
    assert (missed, changed) == (0, 1)
    assert (after.status, after.lease_expires_at, after.outcome) == ("running", lease, {"x": [1]})
    assert (after.attempts, after.total_attempts) == (before.attempts + 1, before.total_attempts)
    assert after.updated_at > before.updated_at


def test_event_status_is_written_only_when_it_changes(delivery: Delivery) -> None:
    from events.status import lock_event, refresh_event_status

    event = Event.objects.get(id=delivery.event_id)
    stamp = event.status_changed_at

    same = refresh_event_status(event.id, lock_event(event.id))
    Delivery.objects.filter(id=delivery.id).update(status="succeeded")
    changed = refresh_event_status(event.id, lock_event(event.id))

    event.refresh_from_db()
    assert (same, changed, event.status) == ("received", "processed", "processed")
    assert event.status_changed_at > stamp


STATES = [
    ("pending", 0),
    ("pending", 2),  # requeued: pending again, but it has run before
    ("running", 1),
    ("retrying", 1),
    ("succeeded", 1),
    ("skipped", 0),
    ("dead_lettered", 3),
]


@pytest.mark.parametrize("first", STATES)
@pytest.mark.parametrize("second", [None, *STATES])
def test_settle_in_sql_derives_what_derive_status_derives(
    routes: None,
    monkeypatch: pytest.MonkeyPatch,
    first: tuple[str, int],
    second: tuple[str, int] | None,
) -> None:
    from collections import Counter

    from events.status import derive_status, lock_event, settle_event_status

    # given an event with one or two deliveries in these states
    monkeypatch.setattr("events.dispatch.enqueue", lambda jobs: None)
    source = Source.objects.create(slug="settle", kind="api")
    kind = "test.noop" if second is None else "scenario.reservation.cancelled"
    event = publish(source=source, type=kind, payload={}).event
    states = [first] if second is None else [first, second]
    for delivery, (status, total) in zip(
        Delivery.objects.filter(event=event).order_by("id"), states, strict=True
    ):
        Delivery.objects.filter(id=delivery.id).update(status=status, total_attempts=total)

    # when a transition settles the event's status in SQL, under the event's lock
    lock_event(event.id)
    settle_event_status(event.id)

    # then it is what the Python rules give
    started = any(total > 0 or status != "pending" for status, total in states)
    expected = derive_status(Counter(status for status, _ in states), started)
    assert Event.objects.get(id=event.id).status == expected


def test_settle_writes_nothing_when_the_status_holds(delivery: Delivery) -> None:
    from events.status import settle_event_status

    before = Event.objects.get(id=delivery.event_id)

    settle_event_status(delivery.event_id)

    after = Event.objects.get(id=delivery.event_id)
    assert (after.status, after.status_changed_at) == ("received", before.status_changed_at)


@pytest.mark.django_db
@pytest.mark.parametrize("second", STATES)
@pytest.mark.parametrize("change", [("running", 1), ("succeeded", 1), ("dead_lettered", 3)])
def test_settle_in_a_changing_statement_derives_the_status_the_change_leaves(
    routes: None,
    monkeypatch: pytest.MonkeyPatch,
    change: tuple[str, int],
    second: tuple[str, int],
) -> None:
    from collections import Counter

    from events.status import derive_status, lock_event, settle_sql

    # given an event whose first delivery is pending and second in some state
    monkeypatch.setattr("events.dispatch.enqueue", lambda jobs: None)
    source = Source.objects.create(slug="settle-change", kind="api")
    event = publish(source=source, type="scenario.reservation.cancelled", payload={}).event
    first, other = Delivery.objects.filter(event=event).order_by("id")
    Delivery.objects.filter(id=other.id).update(status=second[0], total_attempts=second[1])

    # when one statement changes the first delivery and settles the event (as a claim or an
    # outcome does), the settling step seeing the deliveries as they were before it
    lock_event(event.id)
    status, total = change
    rows.together(
        [
            (
                "changed",
                rows.update_sql(
                    Delivery,
                    "id = %s",
                    [first.id],
                    {"status": status},
                    {"total_attempts": str(total)},
                    "id",
                ),
            ),
            (
                "settled",
                settle_sql(event.id, (first.id, status, total), "EXISTS (SELECT 1 FROM changed)"),
            ),
        ],
        "SELECT id FROM changed",
    )

    # then the event's status is what the Python rules give for the deliveries after it
    states = [change, second]
    started = any(t > 0 or s != "pending" for s, t in states)
    assert Event.objects.get(id=event.id).status == derive_status(
        Counter(s for s, _ in states), started
    )


def test_a_step_guarded_by_a_change_writes_nothing_when_the_change_missed(
    delivery: Delivery,
) -> None:
    started = timezone.now()

    row = rows.together(
        [
            (
                "claimed",
                rows.update_sql(
                    Delivery,
                    "id = %s AND status = %s",
                    [delivery.id, "running"],
                    {"status": "succeeded"},
                    returning="id",
                ),
            ),
            (
                "attempt",
                rows.insert_sql(
                    Attempt(delivery=delivery, number=1, started_at=started), "FROM claimed"
                ),
            ),
        ],
        "SELECT id FROM attempt",
    )

    assert row is None
    assert not Attempt.objects.filter(delivery=delivery).exists()
    assert Delivery.objects.get(id=delivery.id).status == "pending"


def test_insert_in_a_statement_of_steps_writes_what_create_writes(delivery: Delivery) -> None:
    started = timezone.now()
    attempt = Attempt(delivery=delivery, number=1, started_at=started, worker="w@host")

    row = rows.together(
        [
            ("found", ("SELECT id FROM events_delivery WHERE id = %s", [delivery.id])),
            ("attempt", rows.insert_sql(attempt, "FROM found")),
        ],
        "SELECT id FROM attempt",
    )

    assert row is not None
    stored = Attempt.objects.get(id=row[0])
    assert (stored.delivery_id, stored.number, stored.status) == (delivery.id, 1, "running")
    assert (stored.started_at, stored.worker, stored.outcome, stored.finished_at) == (
        started,
        "w@host",
        None,
        None,
    )


@pytest.mark.django_db(transaction=True)
def test_a_plain_delivery_is_two_round_trips(
    routes: None, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from events.delivery import execute

    # given two no-op deliveries, the first run so the route lookups are memoised
    monkeypatch.setattr("events.dispatch.enqueue", lambda jobs: None)
    settings.SWITCHYARD_LOOKUP_CACHE_SECONDS = 60.0
    source = Source.objects.create(slug="statements", kind="api")
    first, second = (
        Delivery.objects.get(event=publish(source=source, type="test.noop", payload={}).event)
        for _ in range(2)
    )
    execute(first.id)

    # when the second runs
    with CaptureQueriesContext(connection) as queries:
        assert execute(second.id).status == "succeeded"

    # then the claim is one query string (the event's lock; the read and the writes) and so
    # is the outcome (the lock; the writes), each its own transaction: no BEGIN, no COMMIT
    sql = [q["sql"] for q in queries.captured_queries]
    assert [[part.split(" ", 1)[0] for part in text.split("; ")] for text in sql] == [
        ["SELECT", "WITH"],
        ["SELECT", "WITH"],
    ]
    assert all("FOR UPDATE" in text.split("; ")[0] for text in sql)
    assert Attempt.objects.get(delivery=second).status == "succeeded"
    assert Event.objects.get(id=second.event_id).status == "processed"
