"""The hourly metrics check: how many events arrived in the hour before the tick, by status,
and how many deliveries were dead-lettered, as the delivery's outcome (visible in the admin).

Subscribed to ``schedule.metrics-check`` (installed by ``manage.py install_schedules``). The
hour ends at the tick's event time, not at the run, so a retried run counts the same hour.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count

from events.models import Delivery, DeliveryStatus, Event, EventStatus
from handlers.context import HandlerContext
from handlers.registry import handler

WINDOW = timedelta(hours=1)


@handler(
    "metrics-check",
    on=["schedule.metrics-check"],
    sources=["schedule"],
    max_attempts=3,
    time_limit=60,
)
def metrics_check(ctx: HandlerContext) -> dict[str, Any]:
    """Count the last hour's events by status, and dead letters."""
    end = datetime.fromisoformat(ctx.event.received_at)
    start = end - WINDOW

    # Every status, so a quiet hour reads as zeros rather than as missing keys.
    counts: dict[str, int] = dict.fromkeys(EventStatus.values, 0)
    rows = (
        Event.objects.filter(received_at__gte=start, received_at__lt=end)
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for status, n in rows:
        counts[status] = n
    dead = Delivery.objects.filter(status=DeliveryStatus.DEAD_LETTERED)
    outcome = {
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "events": counts,
        "events_total": sum(counts.values()),
        "dead_lettered_in_window": dead.filter(finished_at__gte=start, finished_at__lt=end).count(),
        "dead_letters_open": dead.count(),
    }
    ctx.logger.info(
        "metrics check: %d events, %d newly dead-lettered, %d dead letters open",
        outcome["events_total"],
        outcome["dead_lettered_in_window"],
        outcome["dead_letters_open"],
    )
    return outcome
