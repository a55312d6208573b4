"""Claiming a delivery for an attempt, and renewing the leases of running attempts."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from events import conf

from .. import rows
from ..holders import holder, holder_is_dead
from ..models import Attempt, AttemptStatus, Delivery, DeliveryStatus, Event, Route
from ..status import settle_event_status, settle_sql
from . import flow
from .policy import CLAIM_SKEW, RouteSettings, route_settings

log = logging.getLogger("switchyard.pipeline")


@dataclass(frozen=True)
class Outcome:
    """What happened to one task run, for the Celery task to act on."""

    delivery_id: int
    status: str  # a DeliveryStatus value, or "noop" when this copy had nothing to do
    retry_in: float | None = None
    queue: str = "default"
    time_limit: int = 60


@dataclass(frozen=True)
class Claim:
    delivery: Delivery
    number: int  # the Attempt number, also the fencing token
    attempts: int  # attempts in the current cycle, this one included
    route: RouteSettings
    attempt_id: int = 0  # the Attempt row this run records into


def lock_for(delivery_id: int) -> bool:
    """Lock the event of ``delivery_id`` (one statement); False if it is gone."""
    with connection.cursor() as cursor:
        cursor.execute(*lock_for_sql(delivery_id))
        row = cursor.fetchone()
    return row is not None


def lock_for_sql(delivery_id: int) -> tuple[str, list[Any]]:
    lock = " FOR UPDATE OF e" if connection.features.has_select_for_update_of else ""
    return (
        f"SELECT e.status FROM {Event._meta.db_table} e "  # noqa: S608
        f"JOIN {Delivery._meta.db_table} d ON d.event_id = e.id WHERE d.id = %s{lock}",
        [delivery_id],
    )


def claim(delivery_id: int, *, worker: str = "", queue: str = "") -> Claim | Outcome:
    """Take the delivery for one attempt, or say why this message has nothing to do.

    A running delivery is taken over when its lease has lapsed, or at once when its holder is
    a process on this machine that no longer exists (a prefork child killed, a worker killed
    whose message the broker gave back): the copy that comes back does the work instead of
    being dropped. A running delivery whose holder is alive is left to it.

    The event's row lock is taken first, so the delivery read after it is current (every
    transition takes that lock before changing a delivery); the claim itself is still a
    conditional update. On the common path (PostgreSQL) the lock and one statement that reads
    the delivery and starts it go as one query string (``_claim_at_once``); anything that
    statement leaves takes the path below: lock, fetch, decide, then update, Attempt insert and
    the event's status in one statement, in one short transaction.
    """
    now = timezone.now()
    # ``queue``, the message's: on a queue that carries flow control the one-round-trip claim
    # would miss its routes' deliveries and cost a round trip for nothing.
    if connection.vendor == "postgresql" and not (queue and flow.queue_has_flow_control(queue)):
        fast = _claim_at_once(delivery_id, worker[:200], now)
        if fast is not None:
            return fast
    with transaction.atomic():
        locked = lock_for(delivery_id)
        delivery = rows.fetch_delivery(delivery_id) if locked else None
        if delivery is None:
            log.warning("delivery %s no longer exists; message dropped", delivery_id)
            return Outcome(delivery_id, "noop")
        rs = route_settings(delivery)
        waiting = delivery.status in (DeliveryStatus.PENDING, DeliveryStatus.RETRYING)
        if waiting and delivery.next_attempt_at > now + CLAIM_SKEW:
            # Early: a copy sent ahead of a retry, or a clock ahead of ours wrote the due time.
            # Send it again for the due time rather than drop the only message there may be.
            wait = (delivery.next_attempt_at - now).total_seconds()
            log.info("delivery %s is due in %.1f s; message re-sent for then", delivery_id, wait)
            return Outcome(
                delivery_id, "early", retry_in=wait, queue=rs.queue, time_limit=rs.time_limit
            )
        lost = delivery.status == DeliveryStatus.RUNNING and holder_lost(delivery, now)
        if not (waiting or lost):
            log.info("delivery %s is %s; duplicate message ignored", delivery_id, delivery.status)
            return Outcome(delivery_id, "noop", queue=rs.queue, time_limit=rs.time_limit)

        # Under the event lock the row was read current: match it exactly. (Built only where
        # needed: a queryset costs about as much CPU as a round trip.)
        def current() -> Any:
            return Delivery.objects.filter(
                id=delivery_id, status=delivery.status, total_attempts=delivery.total_attempts
            )

        if lost:
            log.warning(
                "delivery %s: attempt %s was lost (%s); taken over",
                delivery_id,
                delivery.total_attempts,
                lost,
            )
            mark_lost(delivery, now, lost)
            if delivery.attempts >= rs.max_attempts:
                current().update(
                    status=DeliveryStatus.DEAD_LETTERED,
                    finished_at=now,
                    lease_expires_at=None,
                    error_class="WorkerLost",
                    last_error=f"the worker running the last attempt was lost ({lost})",
                )
                settle_event_status(delivery.event_id)
                flow.wake_after_commit(delivery)
                return Outcome(delivery_id, DeliveryStatus.DEAD_LETTERED)

        # A delivery an operator requeued (fresh cycle, but run before) is run even if stale.
        requeued = delivery.attempts == 0 and delivery.total_attempts > 0
        if (
            rs.stale_after is not None
            and not requeued
            and delivery.event.received_at < now - timedelta(seconds=rs.stale_after)
        ):
            current().update(
                status=DeliveryStatus.SKIPPED,
                finished_at=now,
                lease_expires_at=None,
                error_class="Stale",
                last_error=f"event older than the route's stale_after of {rs.stale_after} s",
            )
            settle_event_status(delivery.event_id)
            flow.wake_after_commit(delivery)
            return Outcome(delivery_id, DeliveryStatus.SKIPPED)

        # The route's concurrency cap and key order, decided under their locks (held until
        # this transaction commits, with the delivery running): events.transitions.flow.
        held = flow.check(delivery, now) if waiting else None
        if held is not None:
            held_for = flow.hold(delivery, *held, now)
            status = "deferred" if held_for is not None else "noop"
            return Outcome(
                delivery_id, status, retry_in=held_for, queue=rs.queue, time_limit=rs.time_limit
            )

        fields = {**_running_fields(now), "started_at": delivery.started_at or now}
        attempt_id = _start(delivery, fields, now, worker[:200])
        if not attempt_id:  # cannot happen under the lock; kept as the fence it is meant to be
            log.info("delivery %s changed under its claim; message ignored", delivery_id)
            return Outcome(delivery_id, "noop", queue=rs.queue, time_limit=rs.time_limit)
    return _started(delivery, fields, rs, attempt_id)


def _started(
    delivery: Delivery, fields: dict[str, Any], rs: RouteSettings, attempt_id: int
) -> Claim:
    """The claim of ``delivery``, read under the event's lock just before the claim's update:
    that update's effect is known without reading the row back."""
    for name, value in fields.items():
        setattr(delivery, name, value)
    delivery.attempts += 1
    delivery.total_attempts += 1
    return Claim(
        delivery=delivery,
        number=delivery.total_attempts,
        attempts=delivery.attempts,
        route=rs,
        attempt_id=attempt_id,
    )


def _running_fields(now: datetime) -> dict[str, Any]:
    return {
        "status": DeliveryStatus.RUNNING,
        "lease_expires_at": now + timedelta(seconds=conf.LEASE_SECONDS.get()),
        "lease_holder": holder(),
        "resends": 0,
        "resend_after": None,
        # A start a limit reserved is used by this claim (events.transitions.deferral).
        "deferred_until": None,
        "held_by": "",
    }


def _claim_at_once(delivery_id: int, worker: str, now: datetime) -> Claim | None:
    """The common claim in one round trip (PostgreSQL): the event's lock, then one statement
    that reads the delivery with its route, event and source, and starts it only where the
    full claim below would, with nothing else to decide: waiting and due, on a route without
    flow control, not stale. None when it did not start it (gone, early, running, finished,
    stale, flow-controlled, or its route deleted): then the full claim runs.

    The two statements go as one query string, one transaction, and the second one's snapshot
    is taken after the first holds the lock, so it reads the delivery as it now is."""
    d = connection.ops.quote_name(Delivery._meta.db_table)
    fields = _running_fields(now)
    raw = {
        "attempts": "attempts + 1",
        "total_attempts": "total_attempts + 1",
        "started_at": "COALESCE(started_at, %s)",
    }
    started = rows.db_value(Delivery, "started_at", now)
    due = rows.db_value(Delivery, "next_attempt_at", now + CLAIM_SKEW)
    received = rows.db_value(Event, "received_at", now)
    plain_route = (
        f"EXISTS (SELECT 1 FROM {Route._meta.db_table} r "  # noqa: S608 - names from the models
        f"JOIN {Event._meta.db_table} e ON e.id = {d}.event_id "
        f"WHERE r.id = {d}.route_id AND r.max_concurrency IS NULL AND NOT r.ordered_by_key "
        f"AND (r.stale_after IS NULL OR ({d}.attempts = 0 AND {d}.total_attempts > 0) "
        "OR e.received_at >= CAST(%s AS timestamptz) - r.stale_after * interval '1 second'))"
    )
    where = f"id = %s AND status IN (%s, %s) AND next_attempt_at <= %s AND {plain_route}"
    where_params = [delivery_id, DeliveryStatus.PENDING, DeliveryStatus.RETRYING, due, received]
    attempt = Attempt(delivery_id=delivery_id, number=1, started_at=now, worker=worker)
    statement = rows.together_sql(
        [
            ("d0", (rows.fetch_sql(), [delivery_id])),
            (
                "claimed",
                rows.update_sql(
                    Delivery, where, where_params, fields, raw, CLAIMED, raw_params=[started]
                ),
            ),
            ("attempt", rows.insert_sql(attempt, "FROM claimed", NUMBER_FROM_CLAIM)),
            (
                "settled",
                settle_sql(
                    None,
                    # Running: the status step needs only that (its attempt count is moot).
                    changed=(delivery_id, DeliveryStatus.RUNNING, 1),
                    guard="EXISTS (SELECT 1 FROM claimed)",
                    event_sql="SELECT event_id FROM claimed",
                ),
            ),
        ],
        "SELECT d0.*, (SELECT id FROM attempt) FROM d0",
    )
    row = rows.batch([lock_for_sql(delivery_id), statement])[1]
    if row is None or row[-1] is None:
        return None
    delivery = rows.delivery_from_row(row[:-1])
    fields = {**fields, "started_at": delivery.started_at or now}
    return _started(delivery, fields, route_settings(delivery), int(row[-1]))


CLAIMED = "id, total_attempts, event_id"
# The Attempt's number is the delivery's total_attempts after the claim's increment.
NUMBER_FROM_CLAIM = (("number", "claimed.total_attempts"),)


def _start(delivery: Delivery, fields: dict[str, Any], now: datetime, worker: str) -> int:
    """Mark the delivery running (as read: status and total_attempts unchanged), add its
    running Attempt and settle the event's status; the attempt's id, or 0 if the delivery was
    not as read. On PostgreSQL one statement: these three writes are most of a claim's round
    trips, and a worker running hundreds of agents is bound by their CPU."""
    where = "id = %s AND status = %s AND total_attempts = %s"
    where_params = [delivery.id, delivery.status, delivery.total_attempts]
    raw = {"attempts": "attempts + 1", "total_attempts": "total_attempts + 1"}
    number = delivery.total_attempts + 1
    attempt = Attempt(delivery=delivery, number=number, started_at=now, worker=worker)
    if connection.vendor != "postgresql":
        if not rows.update(Delivery, where, where_params, fields, raw=raw):
            return 0
        attempt_id = rows.insert(attempt)
        settle_event_status(delivery.event_id)
        return attempt_id
    row = rows.together(
        [
            ("claimed", rows.update_sql(Delivery, where, where_params, fields, raw, "id")),
            ("attempt", rows.insert_sql(attempt, "FROM claimed")),
            (
                "settled",
                settle_sql(
                    delivery.event_id,
                    changed=(delivery.id, DeliveryStatus.RUNNING, number),
                    guard="EXISTS (SELECT 1 FROM claimed)",
                ),
            ),
        ],
        "SELECT id FROM attempt",
    )
    return int(row[0]) if row else 0


def holder_lost(delivery: Delivery, now: datetime) -> str:
    """Why the running attempt's worker is known to be gone, or "" if it may be alive."""
    if delivery.lease_expires_at is None or delivery.lease_expires_at < now - CLAIM_SKEW:
        return "its lease lapsed"
    if delivery.lease_holder and holder_is_dead(delivery.lease_holder):
        return "its worker process has exited"
    return ""


def mark_lost(delivery: Delivery, now: Any, why: str) -> None:
    Attempt.objects.filter(
        delivery=delivery, number=delivery.total_attempts, status=AttemptStatus.RUNNING
    ).update(
        status=AttemptStatus.LOST,
        finished_at=now,
        error_class="WorkerLost",
        error_message=f"no result from the worker: {why}; it is presumed dead",
    )


def renew(held: Iterable[tuple[int, int]], holder: str) -> set[int]:
    """Extend the leases of the running attempts ``held`` ((delivery id, attempt number)) by
    one lease from now; returns the ids whose lease was renewed.

    One statement, no event lock: each row's update is atomic and conditional, so a take-over
    that won first makes the renewal miss (and the late result is fenced off later).
    """
    pairs = list(held)
    if not pairs:
        return set()
    expires = timezone.now() + timedelta(seconds=conf.LEASE_SECONDS.get())
    table = connection.ops.quote_name(Delivery._meta.db_table)
    which = " OR ".join(["(id = %s AND total_attempts = %s)"] * len(pairs))
    params: list[Any] = [rows.db_value(Delivery, "lease_expires_at", expires)]
    params += [DeliveryStatus.RUNNING, holder]
    params += [value for pair in pairs for value in pair]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET lease_expires_at = %s "  # noqa: S608 - names from the model
            f"WHERE status = %s AND lease_holder = %s AND ({which}) RETURNING id",
            params,
        )
        return {row[0] for row in cursor.fetchall()}
