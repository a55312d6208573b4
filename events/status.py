"""An event's status, derived from its deliveries.

Callers hold the event's row lock (``lock_event``) in the same transaction as the delivery change,
so two workers finishing deliveries of one event cannot overwrite each other's view.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from django.db.models import Count, Q
from django.utils import timezone

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


def lock_event(event_id: uuid.UUID | str) -> str | None:
    """Take the event's row lock; every delivery transition does this first (a fixed order).

    Returns the event's status as it stands under the lock (None if the event is gone), so
    ``refresh_event_status`` can skip writing a status that has not changed.
    """
    rows = Event.objects.select_for_update().filter(id=event_id).values_list("status", flat=True)
    return next(iter(rows), None)


_STATUS_COUNTS = {
    "total": Count("id"),
    # "Started": a delivery that ran at least once, or left pending some other way.
    "started": Count("id", filter=Q(total_attempts__gt=0) | ~Q(status=DeliveryStatus.PENDING)),
    **{
        status.value: Count("id", filter=Q(status=status))
        for status in (
            DeliveryStatus.PENDING,
            DeliveryStatus.RUNNING,
            DeliveryStatus.RETRYING,
            DeliveryStatus.DEAD_LETTERED,
        )
    },
}


def refresh_event_status(event_id: uuid.UUID | str, current: str | None = None) -> EventStatus:
    """Derive the event's status from its deliveries (one query) and store it if it changed.

    ``current`` is the status read under the lock (``lock_event``'s answer); when it already
    holds, nothing is written.
    """
    agg = Delivery.objects.filter(event_id=event_id).aggregate(**_STATUS_COUNTS)
    counts: dict[str, int] = {
        key: agg[key]
        for key in (
            DeliveryStatus.PENDING,
            DeliveryStatus.RUNNING,
            DeliveryStatus.RETRYING,
            DeliveryStatus.DEAD_LETTERED,
        )
    }
    # derive_status needs only the total beyond these: count the rest as succeeded/skipped.
    counts[DeliveryStatus.SUCCEEDED] = agg["total"] - sum(counts.values())
    status = derive_status(counts, bool(agg["started"]))
    if current is not None and current == status:
        return status
    Event.objects.filter(id=event_id).exclude(status=status).update(
        status=status, status_changed_at=timezone.now()
    )
    return status
