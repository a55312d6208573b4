"""The hourly metrics check: how many events arrived in the hour before the tick, by status,
and how many deliveries were dead-lettered, as the delivery's outcome (visible in the admin).

Subscribed to ``schedule.metrics-check`` (installed by ``manage.py install_schedules``). The
hour ends at the tick's event time, not at the run, so a retried run counts the same hour.
``handlers`` does not import ``events``: the models are looked up by label when it runs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.apps import apps
from django.db.models import Count

from handlers.context import HandlerContext
from handlers.registry import handler

WINDOW = timedelta(hours=1)


@handler("metrics-check", on=["schedule.metrics-check"], max_attempts=3, time_limit=60)
def metrics_check(ctx: HandlerContext) -> dict[str, Any]:
    """Count the last hour's events by status, and dead letters."""
    event_model = apps.get_model("events", "Event")
    delivery_model = apps.get_model("events", "Delivery")
    end = datetime.fromisoformat(ctx.event.received_at)
    start = end - WINDOW

    # Every status, so a quiet hour reads as zeros rather than as missing keys.
    statuses = [value for value, _ in event_model._meta.get_field("status").choices or ()]
    counts: dict[str, int] = dict.fromkeys(statuses, 0)
    rows = (
        event_model.objects.filter(received_at__gte=start, received_at__lt=end)
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for status, n in rows:
        counts[status] = n
    dead = delivery_model.objects.filter(status="dead_lettered")  # events.models.DeliveryStatus
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
