"""The admin's home: the dashboard above the app list.

Events received over the last hour and day by what became of them, events per minute by
status, dead letters and the backlog per queue (now and over time), handler durations, worker
and beat liveness, then the panels other apps add (events.extensions.add_dashboard_panel: the
agents' tokens and cost per day). Every figure links to the admin list behind it.

``context`` runs on each load of the admin index (events.admin.site); the page reloads itself
every ``REFRESH_SECONDS`` (events/static/events/dashboard.js), so each part is a query or two
on an indexed column over a bounded window (tests/admin/test_dashboard.py counts them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import timezone

from .. import extensions, samples
from .figures import DAY, durations_chart, event_windows, events_per_minute, handler_durations
from .pipeline import alive, backlog, dead_letters

REFRESH_SECONDS = 30


@dataclass(frozen=True)
class Panel:
    title: str
    html: str  # rendered from a template: safe


def context(request: HttpRequest, now: datetime | None = None) -> dict[str, Any]:
    """What templates/admin/events/dashboard.html draws."""
    # Whole seconds: the figures' links repeat their windows' bounds.
    now = (now or timezone.now()).replace(microsecond=0)
    history = samples.since(now - DAY)
    durations = handler_durations(now)
    panels = []
    for panel in extensions.dashboard_panels():
        panel_context = panel.context(request, now)
        if panel_context is not None:
            html = render_to_string(panel.template, panel_context, request)
            panels.append(Panel(panel.title, html))
    return {
        "refresh_seconds": REFRESH_SECONDS,
        "now": now,
        "windows": event_windows(now),
        "per_minute": events_per_minute(now),
        "dead": dead_letters(now, history),
        "backlog": backlog(now, history),
        "durations": durations,
        "durations_chart": durations_chart(durations),
        "alive": alive(),
        "panels": panels,
    }
