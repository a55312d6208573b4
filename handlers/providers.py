"""The agents' part of every run, added to the pipeline's handler context and history
(events.extensions): each step stored as a Step of the attempt, the daily budget asked before
each LLM call, writes that need a person filed as approvals, the admin's model override; an
event with an approval still undecided is kept by retention, and write-tool keys are pruned
with the rest of the history; a replay's dry run asks the agents' recent costs."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet

from agents_project.db import releasing
from events import extensions
from events.extensions import Pruned, Run

from .approvals import UNDECIDED, requester
from .context import HandlerContext
from .models import ToolEffect
from .overrides import RunSettings
from .run_costs import recent_run_costs
from .traces import recorder


def agent_context(run: Run, ctx: HandlerContext) -> None:
    """Each callback is one short read or write; its connection goes back to the pool when it
    returns, so a handler waiting on the model holds none."""
    # The override and the budget's presence are read in one query, when the agent asks.
    agent_settings = RunSettings(run.delivery.handler)
    ctx.record_step = releasing(
        recorder(run.delivery, run.number, run.clean, attempt_id=run.attempt_id)
    )
    ctx.budget_check = releasing(agent_settings.budget_check)
    ctx.request_approval = releasing(requester(run.delivery))
    ctx.model_override = releasing(agent_settings.model_override)


def undecided_approval() -> Q:
    return Q(deliveries__approvals__status__in=UNDECIDED)


def old_tool_effects(cutoff: datetime) -> QuerySet[ToolEffect]:
    return ToolEffect.objects.filter(created_at__lt=cutoff)


def register() -> None:
    extensions.add_context_provider(agent_context)
    extensions.add_retention_hold(undecided_approval)
    extensions.add_pruned(Pruned("write-tool keys", old_tool_effects))
    extensions.add_cost_estimator(recent_run_costs)
