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


def lock_event(event_id: uuid.UUID | str) -> None:
    """Take the event's row lock; every delivery transition does this first (a fixed order)."""
    list(Event.objects.select_for_update().filter(id=event_id).values_list("id", flat=True))


def refresh_event_status(event_id: uuid.UUID | str) -> EventStatus:
    rows = Delivery.objects.filter(event_id=event_id).values("status").annotate(n=Count("id"))
    counts = {row["status"]: row["n"] for row in rows}
    started = (
        Delivery.objects.filter(event_id=event_id)
        .filter(Q(total_attempts__gt=0) | ~Q(status=DeliveryStatus.PENDING))
        .exists()
    )
    status = derive_status(counts, started)
    Event.objects.filter(id=event_id).exclude(status=status).update(
        status=status, status_changed_at=timezone.now()
    )
    return status
