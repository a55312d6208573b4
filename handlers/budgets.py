"""Daily budgets per agent (``AgentBudget``): what a handler's LLM calls used today, and the
check the agent runtime makes before each call (``HandlerContext.budget_check``).

"Today" starts at midnight in ``settings.TIME_ZONE``. Usage is summed from the Step rows of the
handler's deliveries (every attempt, every LLM call, including failed runs): tokens are input +
output, cost is the stored ``cost_usd``. A handler without an enabled AgentBudget has no daily
limit, and its check costs one indexed lookup.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal

from django.conf import settings
from django.db.models import DecimalField, F, IntegerField, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from .models import AgentBudget, Step, StepKind


@dataclass(frozen=True)
class Usage:
    tokens: int
    cost_usd: Decimal


def local_midnight(now: datetime | None = None) -> datetime:
    """The start of today in ``settings.TIME_ZONE``, as an aware datetime."""
    zone = zoneinfo.ZoneInfo(str(settings.TIME_ZONE))
    today = (now or timezone.now()).astimezone(zone).date()
    return datetime.combine(today, time(), tzinfo=zone)


def llm_steps_since(since: datetime) -> QuerySet[Step]:
    # kind=llm and created_at >= since: the partial index step_llm_created.
    return Step.objects.filter(kind=StepKind.LLM, created_at__gte=since).order_by()


TOKENS = Sum(F("input_tokens") + F("output_tokens"), output_field=IntegerField())
COST = Sum("cost_usd")


def usage_today(handler: str, now: datetime | None = None) -> Usage:
    """Tokens and cost of ``handler``'s LLM calls since local midnight."""
    totals = (
        llm_steps_since(local_midnight(now))
        .filter(attempt__delivery__handler=handler)
        .aggregate(
            tokens=Coalesce(TOKENS, Value(0)),
            cost=Coalesce(COST, Value(Decimal(0)), output_field=DecimalField()),
        )
    )
    return Usage(tokens=int(totals["tokens"]), cost_usd=Decimal(totals["cost"]))


def over_budget(budget: AgentBudget, usage: Usage) -> str | None:
    """The reason ``usage`` is past ``budget`` (reaching a limit counts), or None."""
    if not budget.enabled:
        return None
    limit = budget.daily_token_limit
    if limit is not None and usage.tokens >= limit:
        return (
            f"budget exceeded: agent {budget.handler!r} used {usage.tokens} tokens today "
            f"of its daily {limit}"
        )
    cost_limit = budget.daily_cost_limit_usd
    if cost_limit is not None and usage.cost_usd >= cost_limit:
        return (
            f"budget exceeded: agent {budget.handler!r} spent ${usage.cost_usd} today "
            f"of its daily ${cost_limit}"
        )
    return None


def check(handler: str, now: datetime | None = None) -> str | None:
    """The reason ``handler`` may not make another LLM call today, or None."""
    budget = AgentBudget.objects.filter(handler=handler, enabled=True).first()
    if budget is None or (budget.daily_token_limit is None and budget.daily_cost_limit_usd is None):
        return None
    return over_budget(budget, usage_today(handler, now))


def budget_checker(handler: str) -> Callable[[], str | None]:
    """A ``HandlerContext.budget_check`` for ``handler``: reads the budget and today's usage on
    every call, so a limit changed in the admin applies from the next LLM call."""

    def budget_check() -> str | None:
        return check(handler)

    return budget_check
