"""The alert triager's read tool: how often the same alert fired lately, from stored events.

It counts earlier ``alert.fired`` events from the same source as the alert being triaged (the
run's ``current_event()``), leaving that alert out, so the model can tell a new problem from a
flapping rule.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from events.models import Event
from handlers.llm import current_event, tool

from .facts import facts

ALERT_FIRED = "alert.fired"
MAX_HOURS = 168
MAX_LISTED = 10


@tool(kind="read")
def recent_alerts(name: str, hours: int = 24) -> dict[str, Any]:
    """How many times an alert fired before this one in the last hours, with the latest few.

    Args:
        name: The alert's name (its alertname label).
        hours: How far back to look, 1 to 168.
    """
    current = current_event()
    if not 1 <= hours <= MAX_HOURS:
        raise ValueError(f"hours must be between 1 and {MAX_HOURS}")
    name = name.strip()
    if not name:
        raise ValueError("name is empty")
    earlier = (
        Event.objects.filter(
            type=ALERT_FIRED,
            source__slug=current.source,
            received_at__gte=timezone.now() - timedelta(hours=hours),
        )
        .filter(Q(payload__groupLabels__alertname=name) | Q(payload__commonLabels__alertname=name))
        .exclude(id=current.id)
        .order_by("-received_at")
    )
    latest = []
    for row in earlier.values("payload", "received_at")[:MAX_LISTED]:
        alert = facts(row["payload"])
        latest.append(
            {
                "received_at": row["received_at"].isoformat(),
                "status": alert["status"],
                "severity": alert["severity_label"],
                "service": alert["service"],
            }
        )
    return {"name": name, "hours": hours, "count": earlier.count(), "latest": latest}
