"""An event's status, derived from its deliveries.

Callers hold the event's row lock (``lock_event``) in the same transaction as the delivery change,
so two workers finishing deliveries of one event cannot overwrite each other's view.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from django.db import connection
from django.utils import timezone

from . import rows
from .models import Delivery, DeliveryStatus, Event, EventStatus


def derive_status(counts: Mapping[str, int], any_started: bool) -> EventStatus:
    """The event-state rules (docs/architecture.md, "States"), in order of precedence."""
    total = sum(counts.values())
    if total == 0:
        return EventStatus.IGNORED
    if counts.get(DeliveryStatus.RETRYING, 0):
        return EventStatus.FAILED
    if counts.get(DeliveryStatus.PENDING, 0) or counts.get(DeliveryStatus.RUNNING, 0):
        return EventStatus.PROCESSING if any_started else EventStatus.RECEIVED
    if counts.get(DeliveryStatus.DEAD_LETTERED, 0):
        return EventStatus.DEAD_LETTERED
    return EventStatus.PROCESSED


def _event_pk(event_id: uuid.UUID | str) -> Any:
    """``event_id`` as the database stores it (a uuid on PostgreSQL, hex text on SQLite)."""
    return Event._meta.pk.get_db_prep_value(event_id, connection)


def lock_event(event_id: uuid.UUID | str) -> str | None:
    """Take the event's row lock; every delivery transition does this first (a fixed order).

    Returns the event's status as it stands under the lock (None if the event is gone), so
    ``refresh_event_status`` can skip writing a status that has not changed. Plain SQL: this
    runs twice per delivery, and the ORM's compiling cost more CPU than the query.
    """
    with connection.cursor() as cursor:
        cursor.execute(*lock_event_sql(event_id))
        row = cursor.fetchone()
    return row[0] if row else None


def lock_event_sql(event_id: uuid.UUID | str) -> tuple[str, list[Any]]:
    """``lock_event``'s statement and parameters, to run first in a batch (events.rows.batch)."""
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    table = Event._meta.db_table
    return f"SELECT status FROM {table} WHERE id = %s{lock}", [_event_pk(event_id)]  # noqa: S608


# One pass over the event's deliveries: how many in each state that decides the status, and
# how many have started. (Plain SQL for the same reason as lock_event.)
_COUNTS_SQL = (
    "SELECT count(*), "  # noqa: S608 - the table name comes from the model
    "count(*) FILTER (WHERE total_attempts > 0 OR status <> 'pending'), "
    "count(*) FILTER (WHERE status = 'pending'), "
    "count(*) FILTER (WHERE status = 'running'), "
    "count(*) FILTER (WHERE status = 'retrying'), "
    "count(*) FILTER (WHERE status = 'dead_lettered') "
    f"FROM {Delivery._meta.db_table} WHERE event_id = %s"
)


def refresh_event_status(event_id: uuid.UUID | str, current: str | None = None) -> EventStatus:
    """Derive the event's status from its deliveries (one query) and store it if it changed.

    ``current`` is the status read under the lock (``lock_event``'s answer); when it already
    holds, nothing is written.
    """
    with connection.cursor() as cursor:
        cursor.execute(_COUNTS_SQL, [_event_pk(event_id)])
        row = cursor.fetchone()
    total, started, pending, running, retrying, dead = row if row else (0, 0, 0, 0, 0, 0)
    counts: dict[str, int] = {
        DeliveryStatus.PENDING: pending,
        DeliveryStatus.RUNNING: running,
        DeliveryStatus.RETRYING: retrying,
        DeliveryStatus.DEAD_LETTERED: dead,
        # derive_status needs only the total beyond these: the rest succeeded or were skipped.
        DeliveryStatus.SUCCEEDED: total - pending - running - retrying - dead,
    }
    status = derive_status(counts, bool(started))
    if current is not None and current == status:
        return status
    rows.update(
        Event,
        "id = %s AND status <> %s",
        [_event_pk(event_id), status],
        {"status": status, "status_changed_at": timezone.now()},
    )
    return status


# derive_status() in SQL, over the event's deliveries, as one UPDATE that writes only a change:
# a delivery's transition settles its event's status in one statement. It runs under the
# event's lock, taken by an earlier statement of the same transaction, so in READ COMMITTED it
# sees every delivery as it now is. tests/pipeline/test_rows.py checks it against derive_status.
_SETTLE_SQL = (
    "UPDATE {events} SET status = s.new, status_changed_at = %s FROM (SELECT CASE "
    "WHEN count(*) = 0 THEN 'ignored' "
    "WHEN count(*) FILTER (WHERE status = 'retrying') > 0 THEN 'failed' "
    "WHEN count(*) FILTER (WHERE status IN ('pending', 'running')) > 0 THEN CASE "
    "WHEN count(*) FILTER (WHERE total_attempts > 0 OR status <> 'pending') > 0 "
    "THEN 'processing' ELSE 'received' END "
    "WHEN count(*) FILTER (WHERE status = 'dead_lettered') > 0 THEN 'dead_lettered' "
    "ELSE 'processed' END AS new FROM {deliveries}) s "
    "WHERE {events}.id = {event} AND {events}.status <> s.new{guard}"
)
# The event's deliveries with one of them as a change made by the same statement will leave it
# (a statement does not see its own writes).
_CHANGED_SQL = (
    "(SELECT CASE WHEN id = %s THEN %s ELSE status END AS status, "
    "CASE WHEN id = %s THEN %s ELSE total_attempts END AS total_attempts "
    "FROM {deliveries} WHERE event_id = {event}) d"
)


def settle_sql(
    event_id: uuid.UUID | str | None,
    changed: tuple[int, str, int] | None = None,
    guard: str = "",
    event_sql: str = "",
) -> tuple[str, list[Any]]:
    """The settling UPDATE and its parameters. ``changed`` (delivery id, status,
    total_attempts) and ``guard`` (a condition on the UPDATE) are for running it as a step of a
    statement that changes that delivery itself (events.rows.together); ``event_sql``, SQL
    naming the event instead of ``event_id``, for a step that does not know it beforehand."""
    quote = connection.ops.quote_name
    deliveries = quote(Delivery._meta.db_table)
    if not event_sql and event_id is None:
        raise ValueError("settle_sql needs the event's id or SQL that names it")
    pk = [] if event_sql or event_id is None else [_event_pk(event_id)]
    event = f"({event_sql})" if event_sql else "%s"
    now = Event._meta.get_field("status_changed_at").get_db_prep_save(timezone.now(), connection)
    if changed is None:
        source, source_params = f"{deliveries} WHERE event_id = {event}", pk
    else:
        delivery_id, status, total_attempts = changed
        source = _CHANGED_SQL.format(deliveries=deliveries, event=event)
        source_params = [delivery_id, status, delivery_id, total_attempts, *pk]
    sql = _SETTLE_SQL.format(
        events=quote(Event._meta.db_table),
        deliveries=source,
        guard=f" AND {guard}" if guard else "",
        event=event,
    )
    return sql, [now, *source_params, *pk]


def settle_event_status(event_id: uuid.UUID | str) -> None:
    """``refresh_event_status`` in one statement, for a caller holding the event's lock."""
    sql, params = settle_sql(event_id)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
