"""What an agent's recent runs cost on average, from their traced LLM steps: the estimate a
replay's dry run shows (registered with events.extensions.add_cost_estimator)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

from django.db.models import F, Max, Sum
from django.utils import timezone

from events.extensions import RunCost

from .llm.agent import get_agent
from .models import Step, StepKind

# A run is one delivery (all its attempts): what one more delivery of the agent may spend.
# The averages are over its newest RECENT_RUNS runs of the last RECENT_DAYS days.
RECENT_RUNS = 50
RECENT_DAYS = 14
MICRO = Decimal("0.000001")


def recent_run_costs(handlers: Sequence[str]) -> dict[str, RunCost | None]:
    """For each of ``handlers`` that is an agent (made with handlers.llm.Agent, or with LLM
    steps recorded lately): its averages, or None when it has no recent runs."""
    since = timezone.now() - timedelta(days=RECENT_DAYS)
    found: dict[str, RunCost | None] = {}
    for name in handlers:
        runs = list(
            # Served by the partial index step_llm_created (kind = llm, created_at).
            Step.objects.filter(
                kind=StepKind.LLM, created_at__gte=since, attempt__delivery__handler=name
            )
            .values("attempt__delivery_id")
            .annotate(
                tokens=Sum(F("input_tokens") + F("output_tokens")),
                cost=Sum("cost_usd"),
                last=Max("created_at"),
            )
            .order_by("-last")[:RECENT_RUNS]
        )
        if runs:
            count = len(runs)
            found[name] = RunCost(
                runs=count,
                tokens=round(sum(run["tokens"] or 0 for run in runs) / count),
                cost_usd=(
                    sum((run["cost"] or Decimal(0) for run in runs), Decimal(0)) / count
                ).quantize(MICRO),
            )
        elif get_agent(name) is not None:
            found[name] = None
    return found
