"""An event's status, derived from its deliveries.

Callers hold the event's row lock (``lock_event``) in the same transaction as the delivery change,
so two workers finishing deliveries of one event cannot overwrite each other's view.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.utils import timezone

from . import rows
from .models import Delivery, DeliveryStatus, Event, EventStatus


def derive_status(counts: Mapping[str, int], any_started: bool) -> EventStatus:
    """The rules in DESIGN.md, in order of precedence."""
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
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT status FROM {Event._meta.db_table} WHERE id = %s{lock}",  # noqa: S608
            [_event_pk(event_id)],
        )
        row = cursor.fetchone()
    return row[0] if row else None


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


@dataclass
class LockedEvent:
    """An event locked for one delivery's transition, with what its deliveries were under the
    lock: ``(status, total_attempts)`` of each. ``settle`` derives the new status from these
    and the one change the caller made, so a transition costs no second look at them."""

    pk: Any
    status: str
    deliveries: list[tuple[str, int]]

    def settle(self, before: tuple[str, int], after: tuple[str, int]) -> EventStatus:
        """The event's status once one delivery went from ``before`` to ``after``; written
        only if it changed."""
        deliveries = list(self.deliveries)
        try:
            deliveries.remove(before)
        except ValueError:  # not what was read under the lock: count them again
            return refresh_event_status(self.pk, self.status)
        deliveries.append(after)
        started = any(total > 0 or status != DeliveryStatus.PENDING for status, total in deliveries)
        status = derive_status(Counter(status for status, _ in deliveries), started)
        if status != self.status:
            _write_status(self.pk, status)
        return status


def lock_with_deliveries(
    *, event_id: Any = None, delivery_id: int | None = None
) -> LockedEvent | None:
    """Lock an event (given, or the one ``delivery_id`` belongs to) and read its status and
    its deliveries' states in the same statement; None if it is gone."""
    quote = connection.ops.quote_name
    events, deliveries = quote(Event._meta.db_table), quote(Delivery._meta.db_table)
    concat = "string_agg" if connection.vendor == "postgresql" else "group_concat"
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    if delivery_id is not None:
        where, param = f"e.id = (SELECT event_id FROM {deliveries} WHERE id = %s)", delivery_id  # noqa: S608
    else:
        where, param = "e.id = %s", _event_pk(event_id)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT e.id, e.status, (SELECT {concat}(d.status || ':' || d.total_attempts, ',') "  # noqa: S608
            f"FROM {deliveries} d WHERE d.event_id = e.id) FROM {events} e WHERE {where}{lock}",
            [param],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    states = []
    for item in (row[2] or "").split(","):
        if item:
            status, _, total = item.rpartition(":")
            states.append((status, int(total)))
    return LockedEvent(pk=row[0], status=row[1], deliveries=states)


def _write_status(pk: Any, status: str) -> None:
    rows.update(
        Event,
        "id = %s AND status <> %s",
        [pk, status],
        {"status": status, "status_changed_at": timezone.now()},
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
    _write_status(_event_pk(event_id), status)
    return status
