"""The agents' panel on the admin's dashboard: tokens and cost per agent per day over the last
``DASHBOARD_DAYS`` days, as charts and as a table. Registered with the pipeline's dashboard
through events.extensions (handlers.admin); shown to those who may view agent usage.

Each figure links to that agent's deliveries created that day, whose list shows each one's
tokens and cost (handlers.admin.steps); the whole table is on the Agent usage page.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from events.admin.common import has_model_permission
from events.dashboard import charts
from events.dashboard.figures import changelist
from events.extensions import DashboardPanel

from ..models import AgentUsage
from .usage import first_day, llm_totals

DASHBOARD_DAYS = 7
SERIES_COLOURS = 8


def deliveries_link(handler: str, day: date) -> str:
    """The handler's deliveries created on ``day`` (local time)."""
    start = timezone.make_aware(datetime.combine(day, time()))
    end = timezone.make_aware(datetime.combine(day + timedelta(days=1), time()))
    return changelist("delivery", handler=handler, created_at__gte=start, created_at__lt=end)


def usage_context(request: HttpRequest, now: datetime) -> dict[str, Any] | None:
    if not has_model_permission(request, AgentUsage, "view"):
        return None
    first = timezone.localtime(first_day(DASHBOARD_DAYS, now)).date()
    days = [first + timedelta(days=n) for n in range(DASHBOARD_DAYS)]
    totals = {(row["day"], row["handler"]): row for row in llm_totals(DASHBOARD_DAYS, now)}
    handlers = sorted({handler for _, handler in totals})
    colour = {handler: f"series-{n % SERIES_COLOURS}" for n, handler in enumerate(handlers)}

    def figure(day: date, handler: str) -> dict[str, Any]:
        row = totals.get((day, handler), {})
        return {
            "tokens": int(row.get("tokens") or 0),
            "cost": Decimal(row.get("cost_usd") or 0),
            "href": deliveries_link(handler, day),
        }

    table = [
        {"handler": h, "css": colour[h], "days": [figure(d, h) for d in days]} for h in handlers
    ]
    token_cols, cost_cols = [], []
    for n, day in enumerate(days):
        cells = [(h, table[i]["days"][n]) for i, h in enumerate(handlers)]
        label = day.strftime("%m-%d")
        token_cols.append(
            charts.Column(
                label,
                tuple(
                    charts.Segment(
                        c["tokens"], colour[h], f"{label} {h}: {c['tokens']:,} tokens", c["href"]
                    )
                    for h, c in cells
                ),
            )
        )
        cost_cols.append(
            charts.Column(
                label,
                tuple(
                    charts.Segment(
                        float(c["cost"]), colour[h], f"{label} {h}: ${c['cost']:.4f}", c["href"]
                    )
                    for h, c in cells
                ),
            )
        )
    return {
        "days": days,
        "table": table,
        "tokens_chart": charts.columns(token_cols, label="Tokens per agent per day"),
        "cost_chart": charts.columns(cost_cols, label="Cost (USD) per agent per day"),
        "usage_url": reverse("admin:handlers_agentusage_changelist"),
    }


PANEL = DashboardPanel(
    title=f"Agents: tokens and cost per day, last {DASHBOARD_DAYS} days",
    template="admin/handlers/dashboard_usage.html",
    context=usage_context,
)
