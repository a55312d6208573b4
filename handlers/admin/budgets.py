"""Agent budgets: a daily token and/or cost limit per agent handler, with today's usage (since
local midnight in ``TIME_ZONE``) shown against each limit. See handlers.budgets."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import DecimalField, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest

from ..budgets import COST, TOKENS, Usage, llm_steps_since, local_midnight, over_budget
from ..models import AgentBudget
from .overrides import agent_choices


def with_usage_today(queryset: QuerySet[AgentBudget]) -> QuerySet[AgentBudget]:
    """Annotate each budget with its handler's tokens and cost today, in the list's one query."""
    steps = llm_steps_since(local_midnight()).filter(attempt__delivery__handler=OuterRef("handler"))
    # Grouped by a constant (every row is kind=llm): one sum per handler.
    per_handler = steps.values("kind")
    tokens = per_handler.annotate(total=TOKENS).values("total")
    cost = per_handler.annotate(total=COST).values("total")
    return queryset.annotate(
        tokens_today=Coalesce(Subquery(tokens, output_field=IntegerField()), Value(0)),
        cost_today=Coalesce(
            Subquery(cost, output_field=DecimalField(max_digits=18, decimal_places=6)),
            Value(Decimal(0)),
            output_field=DecimalField(max_digits=18, decimal_places=6),
        ),
    )


class AgentBudgetForm(forms.ModelForm):
    """The handler is chosen from the agents registered here: a typo ("paymnets.recovery")
    would be a budget that limits nothing."""

    handler = forms.ChoiceField(choices=(), help_text="An agent handler registered here.")

    class Meta:
        model = AgentBudget
        fields = ("handler", "daily_token_limit", "daily_cost_limit_usd", "enabled")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        handler_field = self.fields["handler"]
        assert isinstance(handler_field, forms.ChoiceField)
        handler_field.choices = agent_choices(self.instance.handler if self.instance.pk else None)


@admin.register(AgentBudget)
class AgentBudgetAdmin(admin.ModelAdmin):
    form = AgentBudgetForm
    list_display = ("handler", "enabled", "tokens_today", "cost_today", "state")
    list_filter = ("enabled",)
    search_fields = ("handler",)
    fields = ("handler", "daily_token_limit", "daily_cost_limit_usd", "enabled")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return with_usage_today(super().get_queryset(request))

    @admin.display(description="tokens today / limit")
    def tokens_today(self, obj: AgentBudget) -> str:
        limit = obj.daily_token_limit
        used = int(obj.tokens_today)  # type: ignore[attr-defined]
        return f"{used:,} / {'no limit' if limit is None else f'{limit:,}'}"

    @admin.display(description="cost today / limit")
    def cost_today(self, obj: AgentBudget) -> str:
        limit = obj.daily_cost_limit_usd
        used = Decimal(obj.cost_today)  # type: ignore[attr-defined]
        return f"${used:,.6f} / {'no limit' if limit is None else f'${limit:,.2f}'}"

    @admin.display(description="today")
    def state(self, obj: AgentBudget) -> str:
        if not obj.enabled:
            return "disabled"
        usage = Usage(
            tokens=int(obj.tokens_today),  # type: ignore[attr-defined]
            cost_usd=Decimal(obj.cost_today),  # type: ignore[attr-defined]
        )
        return "exceeded" if over_budget(obj, usage) else "within budget"
