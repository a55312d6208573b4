"""Agent usage: per handler per day, the deliveries that ran an agent, their LLM calls, tokens
and cost, over the last ``USAGE_DAYS`` days or a from/to range the operator picks. One
read-only page, no rows to open."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone

from events.admin.filters import INPUT_FORMAT, parse_moment

from ..models import AgentUsage, Step, StepKind

USAGE_DAYS = 14


def first_day(days: int, now: datetime | None = None) -> datetime:
    """Local midnight at the start of the first of the last ``days`` days (today included)."""
    today = timezone.localtime(now or timezone.now()).date()
    return timezone.make_aware(datetime.combine(today - timedelta(days=days - 1), time()))


def usage_rows(
    days: int = USAGE_DAYS,
    now: datetime | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """One row per (day, handler), newest day first; days in the current time zone. Steps
    from ``since`` (default: the start of the day ``days - 1`` days ago) to ``until`` (not
    included; default: no end)."""
    if since is None:
        since = first_day(days, now)
    steps = Step.objects.filter(created_at__gte=since)
    if until is not None:
        steps = steps.filter(created_at__lt=until)
    rows = (
        steps.order_by()
        .annotate(day=TruncDate("created_at"), handler=F("attempt__delivery__handler"))
        .values("day", "handler")
        .annotate(
            deliveries=Count("attempt__delivery_id", distinct=True),
            llm_calls=Count("id", filter=Q(kind=StepKind.LLM)),
            tool_calls=Count("id", filter=Q(kind=StepKind.TOOL)),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
            cache_creation_tokens=Sum("cache_creation_tokens"),
            cache_read_tokens=Sum("cache_read_tokens"),
            cost_usd=Sum("cost_usd"),
        )
        .order_by("-day", "handler")
    )
    return [dict(row) for row in rows]


def llm_totals(days: int, now: datetime | None = None) -> list[dict[str, Any]]:
    """Tokens (input + output) and cost of the LLM calls per (day, handler) over the last
    ``days`` days, oldest first: what the dashboard draws (handlers.admin.dashboard), through
    the partial index "step_llm_created"."""
    rows = (
        Step.objects.filter(kind=StepKind.LLM, created_at__gte=first_day(days, now))
        .order_by()
        .annotate(day=TruncDate("created_at"), handler=F("attempt__delivery__handler"))
        .values("day", "handler")
        .annotate(
            tokens=Sum(F("input_tokens") + F("output_tokens")),
            cost_usd=Sum("cost_usd"),
        )
        .order_by("day", "handler")
    )
    return [dict(row) for row in rows]


@admin.register(AgentUsage)
class AgentUsageAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> TemplateResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        since, until = (self.moment(request, side) for side in ("from", "to"))
        if since is None and until is None:
            title = f"Agent usage, last {USAGE_DAYS} days"
        else:
            title = "Agent usage" + "".join(
                f", {side} {timezone.localtime(moment):%Y-%m-%d %H:%M}"
                for side, moment in (("from", since), ("to", until))
                if moment is not None
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "rows": usage_rows(since=since, until=until),
            "days": USAGE_DAYS,
            "ranged": since is not None or until is not None,
            "from_value": "" if since is None else f"{timezone.localtime(since):{INPUT_FORMAT}}",
            "to_value": "" if until is None else f"{timezone.localtime(until):{INPUT_FORMAT}}",
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/handlers/agentusage/usage.html", context)

    def moment(self, request: HttpRequest, side: str) -> datetime | None:
        """The page's ``created_at__from`` or ``__to``, the names the lists' time-range filter
        uses; a value that is not a time is ignored with a warning."""
        value = request.GET.get(f"created_at__{side}", "").strip()
        if not value:
            return None
        try:
            return parse_moment(value)
        except ValueError:
            messages.warning(
                request,
                f"Ignored the {side} time {value[:40]!r}: not a date and time such as "
                "2025-03-01 12:00.",
            )
            return None
