"""Budgets: a run's own token budget (Agent.max_tokens_per_run) and an agent's daily token and
cost budget (AgentBudget, handlers.budgets). Past either, the delivery is dead-lettered with a
"budget exceeded" reason and no further request reaches the Messages API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count
from typing import Any

import pytest
from django.utils import timezone

from events.delivery import execute
from events.models import Attempt, AttemptStatus, Delivery, DeliveryStatus, Event, Source
from events.publish import publish
from handlers.budgets import check, local_midnight, usage_today
from handlers.context import HandlerContext
from handlers.errors import PermanentError
from handlers.llm import Agent, BudgetExceeded
from handlers.models import AgentBudget, Step

from .conftest import FakeMessagesAPI

PRICES = {"claude-sonnet-5-5": {"input": 3, "output": 15, "cache_write": 3.75, "cache_read": 0.3}}
_ids = count(1)


@pytest.fixture
def prices(settings: Any) -> None:
    settings.SWITCHYARD_MODEL_PRICES = PRICES


@pytest.fixture
def source(db: None) -> Source:
    return Source.objects.create(slug="agents", kind="api")


def deliver(source: Source, type: str, payload: dict[str, Any] | None = None) -> Delivery:
    event = publish(source=source, type=type, payload=payload or {"question": "ord_7?"}).event
    delivery = Delivery.objects.get(event=event)
    execute(delivery.id)
    delivery.refresh_from_db()
    return delivery


def earlier_usage(
    source: Source, handler: str, when: datetime, tokens: tuple[int, int], cost: str = "0"
) -> Step:
    """An earlier delivery of ``handler`` whose one LLM call was made at ``when``."""
    n = next(_ids)
    event = Event.objects.create(
        source=source, external_id=f"earlier-{n}", type="test.agent", payload={}, received_at=when
    )
    delivery = Delivery.objects.create(
        event=event, handler=handler, status=DeliveryStatus.SUCCEEDED, attempts=1, total_attempts=1
    )
    attempt = Attempt.objects.create(delivery=delivery, number=1, status=AttemptStatus.SUCCEEDED)
    return Step.objects.create(
        attempt=attempt,
        number=1,
        kind="llm",
        name="claude-sonnet-5-5",
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        cost_usd=Decimal(cost),
        created_at=when,
    )


def step_kinds(delivery: Delivery) -> list[tuple[str, str]]:
    return list(
        Step.objects.filter(attempt__delivery=delivery)
        .order_by("attempt__number", "number")
        .values_list("kind", "name")
    )


# --- Per run ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_run_over_its_token_budget_stops_before_the_next_call_and_dead_letters(
    fake_api: FakeMessagesAPI, routes: None, prices: None, source: Source
) -> None:
    # given: test.budget_agent may use 1000 tokens a run; its second call takes it to 1050
    fake_api.tool_use(
        "lookup_order",
        {"order_id": "ord_7"},
        id="t1",
        usage={"input_tokens": 600, "output_tokens": 100},
    )
    fake_api.tool_use(
        "lookup_order",
        {"order_id": "ord_8"},
        id="t2",
        usage={"input_tokens": 250, "output_tokens": 100},
    )
    fake_api.text("never sent")

    # when
    delivery = deliver(source, "test.budget_agent")

    # then: dead-lettered at once with the reason, not retried
    assert delivery.status == DeliveryStatus.DEAD_LETTERED
    assert delivery.attempts == 1
    assert delivery.last_error == "budget exceeded: run used 1050 tokens of 1000"
    assert delivery.error_class == "handlers.llm.agent.BudgetExceeded"
    # two requests only, and the tool the over-budget answer asked for never ran
    assert len(fake_api.requests) == 2
    assert len(fake_api.script) == 1
    assert step_kinds(delivery) == [
        ("llm", "claude-sonnet-5-5"),
        ("tool", "lookup_order"),
        ("llm", "claude-sonnet-5-5"),
    ]


def test_the_run_budget_defaults_to_the_setting(
    fake_api: FakeMessagesAPI, settings: Any, make_ctx: Any
) -> None:
    settings.SWITCHYARD_AGENT_MAX_TOKENS_PER_RUN = 300
    agent = Agent(name="test.agent", system="s", tools=[], max_turns=5)
    fake_api.reply(
        [{"type": "tool_use", "id": "t1", "name": "nothing", "input": {}}],
        stop_reason="tool_use",
        usage={"input_tokens": 290, "output_tokens": 10},
    )
    steps: list[dict[str, Any]] = []

    with pytest.raises(BudgetExceeded) as caught:
        agent.run(make_ctx(steps=steps), "go")

    assert str(caught.value) == "budget exceeded: run used 300 tokens of 300"
    assert isinstance(caught.value, PermanentError)
    assert len(fake_api.requests) == 1
    assert [step["kind"] for step in steps] == ["llm"]


def test_a_final_answer_that_passes_the_run_budget_is_kept(
    fake_api: FakeMessagesAPI, make_ctx: Any
) -> None:
    # The budget stops the next call; an answer already paid for is not thrown away.
    agent = Agent(name="test.agent", system="s", max_tokens_per_run=100)
    fake_api.text("done", usage={"input_tokens": 500, "output_tokens": 20})

    result = agent.run(make_ctx(), "go")

    assert result.text == "done"
    assert result.usage["input_tokens"] == 500


def test_the_run_budget_must_be_positive_and_defaults_to_200k(settings: Any) -> None:
    with pytest.raises(ValueError, match="max_tokens_per_run must be at least 1"):
        Agent(name="a", system="s", max_tokens_per_run=0)
    if hasattr(settings, "SWITCHYARD_AGENT_MAX_TOKENS_PER_RUN"):
        del settings.SWITCHYARD_AGENT_MAX_TOKENS_PER_RUN
    assert Agent(name="a", system="s").max_tokens_per_run == 200_000
    settings.SWITCHYARD_AGENT_MAX_TOKENS_PER_RUN = 5000
    assert Agent(name="a", system="s").max_tokens_per_run == 5000
    assert Agent(name="a", system="s", max_tokens_per_run=10).max_tokens_per_run == 10


def test_a_budget_check_reason_stops_the_run_before_any_call(
    fake_api: FakeMessagesAPI, make_ctx: Any
) -> None:
    ctx: HandlerContext = make_ctx()
    ctx.budget_check = lambda: "budget exceeded: no more today"

    with pytest.raises(BudgetExceeded, match=r"^budget exceeded: no more today$"):
        Agent(name="test.agent", system="s").run(ctx, "go")

    assert fake_api.requests == []


def test_the_budget_check_is_asked_before_every_call(
    fake_api: FakeMessagesAPI, make_ctx: Any
) -> None:
    asked: list[int] = []
    ctx: HandlerContext = make_ctx()

    def budget_check() -> str | None:
        asked.append(len(fake_api.requests))
        return "budget exceeded: daily" if len(asked) == 2 else None

    ctx.budget_check = budget_check
    fake_api.reply(
        [{"type": "tool_use", "id": "t1", "name": "nothing", "input": {}}], stop_reason="tool_use"
    )
    fake_api.text("never sent")

    with pytest.raises(BudgetExceeded, match=r"^budget exceeded: daily$"):
        Agent(name="test.agent", system="s").run(ctx, "go")

    assert asked == [0, 1]
    assert len(fake_api.requests) == 1


# --- Per agent per day -----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_daily_token_budget_used_up_today_dead_letters_without_a_request(
    fake_api: FakeMessagesAPI, routes: None, prices: None, source: Source
) -> None:
    # given: 950 of 1000 tokens used earlier today
    AgentBudget.objects.create(handler="test.agent", daily_token_limit=1000)
    earlier_usage(source, "test.agent", local_midnight(), (900, 50))
    fake_api.tool_use(
        "lookup_order",
        {"order_id": "ord_7"},
        id="t1",
        usage={"input_tokens": 40, "output_tokens": 20},
    )
    fake_api.text("never sent")

    # when: the next delivery's first call takes the day to 1010
    first = deliver(source, "test.agent")
    # and the one after
    second = deliver(source, "test.agent")

    # then: the first stops before its second call, the second makes none
    reason = "budget exceeded: agent 'test.agent' used 1010 tokens today of its daily 1000"
    for delivery in (first, second):
        assert delivery.status == DeliveryStatus.DEAD_LETTERED
        assert delivery.attempts == 1
        assert delivery.last_error == reason
    assert len(fake_api.requests) == 1
    assert step_kinds(first) == [("llm", "claude-sonnet-5-5")]
    assert step_kinds(second) == []


@pytest.mark.django_db
def test_a_daily_cost_budget_used_up_today_dead_letters_without_a_request(
    fake_api: FakeMessagesAPI, routes: None, prices: None, source: Source
) -> None:
    AgentBudget.objects.create(handler="test.agent", daily_cost_limit_usd=Decimal("0.50"))
    earlier_usage(source, "test.agent", local_midnight(), (10, 1), cost="0.300000")
    earlier_usage(source, "test.agent", timezone_now(), (10, 1), cost="0.200000")
    fake_api.text("never sent")

    delivery = deliver(source, "test.agent")

    assert delivery.status == DeliveryStatus.DEAD_LETTERED
    assert delivery.last_error == (
        "budget exceeded: agent 'test.agent' spent $0.500000 today of its daily $0.50"
    )
    assert fake_api.requests == []


@pytest.mark.django_db
def test_yesterday_other_agents_and_tool_steps_do_not_count(
    fake_api: FakeMessagesAPI, routes: None, prices: None, source: Source, settings: Any
) -> None:
    # given: a time zone far from UTC, and usage one second before its midnight
    settings.TIME_ZONE = "Pacific/Auckland"
    midnight = local_midnight()
    AgentBudget.objects.create(
        handler="test.agent", daily_token_limit=1000, daily_cost_limit_usd=Decimal("1.00")
    )
    earlier_usage(source, "test.agent", midnight - timedelta(seconds=1), (5000, 5000), cost="99")
    earlier_usage(source, "test.other", midnight, (5000, 5000), cost="99")
    at_midnight = earlier_usage(source, "test.agent", midnight, (400, 100), cost="0.25")
    Step.objects.create(
        attempt=at_midnight.attempt, number=2, kind="tool", name="lookup_order",
        input_tokens=9999, created_at=midnight,
    )  # fmt: skip
    fake_api.text("ord_7 has shipped.", usage={"input_tokens": 100, "output_tokens": 10})

    # when
    delivery = deliver(source, "test.agent")

    # then: only today's LLM calls of test.agent count
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert len(fake_api.requests) == 1
    usage = usage_today("test.agent")
    assert (usage.tokens, usage.cost_usd) == (
        610,
        Decimal("0.250450"),
    )  # 0.25 + 100*3 + 10*15 per million


@pytest.mark.django_db
def test_without_an_enabled_budget_there_is_no_daily_limit(
    fake_api: FakeMessagesAPI, routes: None, prices: None, source: Source
) -> None:
    earlier_usage(source, "test.agent", timezone_now(), (10**9, 10**6), cost="5000")
    fake_api.text("one")
    fake_api.text("two")
    fake_api.text("three")

    assert check("test.agent") is None
    assert deliver(source, "test.agent").status == DeliveryStatus.SUCCEEDED
    # a row without limits, and a disabled row, limit nothing either
    budget = AgentBudget.objects.create(handler="test.agent")
    assert deliver(source, "test.agent").status == DeliveryStatus.SUCCEEDED
    budget.daily_token_limit = 1
    budget.enabled = False
    budget.save()
    assert deliver(source, "test.agent").status == DeliveryStatus.SUCCEEDED
    assert len(fake_api.requests) == 3


@pytest.mark.django_db
def test_the_offline_provider_keeps_the_daily_budget_too(
    routes: None, settings: Any, source: Source
) -> None:
    settings.SWITCHYARD_AGENT_PROVIDER = "offline"
    AgentBudget.objects.create(handler="test.agent", daily_token_limit=0)

    delivery = deliver(source, "test.agent")

    assert delivery.status == DeliveryStatus.DEAD_LETTERED
    assert delivery.last_error == (
        "budget exceeded: agent 'test.agent' used 0 tokens today of its daily 0"
    )


def test_midnight_is_local_to_the_time_zone(settings: Any) -> None:
    settings.TIME_ZONE = "America/New_York"
    now = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)  # 22:00 on the 21st in New York

    assert local_midnight(now) == datetime(2026, 11, 21, 5, 0, tzinfo=UTC)
    settings.TIME_ZONE = "UTC"
    assert local_midnight(now) == datetime(2026, 11, 22, 0, 0, tzinfo=UTC)


def timezone_now() -> datetime:
    return timezone.now()
