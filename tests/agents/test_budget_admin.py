"""Agent budgets in the admin: the list shows today's usage against each limit, and the form
refuses negative limits."""

from __future__ import annotations

import html as html_module
import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from events import extensions
from events.models import Attempt, AttemptStatus, Delivery, DeliveryStatus, Event, Source
from handlers.budgets import local_midnight
from handlers.models import AgentBudget, Step

pytestmark = pytest.mark.django_db


def text(html: str) -> str:
    return html_module.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip())


def usage(source: Source, handler: str, when: Any, steps: list[tuple[str, int, int, str]]) -> None:
    n = Delivery.objects.count() + 1
    event = Event.objects.create(
        source=source, external_id=f"e{n}", type="test.agent", payload={}, received_at=when
    )
    delivery = Delivery.objects.create(
        event=event, handler=handler, status=DeliveryStatus.SUCCEEDED, attempts=1, total_attempts=1
    )
    attempt = Attempt.objects.create(delivery=delivery, number=1, status=AttemptStatus.SUCCEEDED)
    for number, (kind, tokens_in, tokens_out, cost) in enumerate(steps, start=1):
        Step.objects.create(
            attempt=attempt,
            number=number,
            kind=kind,
            name="claude-sonnet-5-5" if kind == "llm" else "lookup_order",
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cost_usd=Decimal(cost),
            created_at=when,
        )


@pytest.fixture
def budgets() -> None:
    midnight = local_midnight()
    source = Source.objects.create(slug="agents", kind="api")
    usage(source, "test.agent", midnight, [("llm", 1200, 34, "0.250000"), ("tool", 50, 0, "0")])
    usage(source, "test.agent", midnight + timedelta(minutes=1), [("llm", 100, 0, "0.005550")])
    usage(source, "test.agent", midnight - timedelta(seconds=1), [("llm", 9000, 0, "9")])
    usage(source, "test.other", midnight, [("llm", 700, 0, "0.5")])
    AgentBudget.objects.create(
        handler="test.agent", daily_token_limit=5000, daily_cost_limit_usd=Decimal("2.50")
    )
    AgentBudget.objects.create(handler="test.other", daily_token_limit=700)
    AgentBudget.objects.create(
        handler="test.idle", daily_cost_limit_usd=Decimal("1"), enabled=False
    )


def test_the_list_shows_todays_usage_against_each_limit(
    admin_client: Client, budgets: None
) -> None:
    page = admin_client.get(reverse("admin:handlers_agentbudget_changelist")).content.decode()

    start = page.index('id="result_list"')
    table = text(page[start : page.index("</table>", start)])
    assert table == (
        'id="result_list"> Handler Enabled Tokens today / limit Cost today / limit Today '
        "test.agent 1,334 / 5,000 $0.255550 / $2.50 within budget "
        "test.idle 0 / no limit $0.000000 / $1.00 disabled "
        "test.other 700 / 700 $0.500000 / no limit exceeded"
    )
    # the enabled column is Django's yes/no icon
    rows = page[start : page.index("</table>", start)]
    assert re.findall(r'alt="(True|False)"', rows) == ["True", "False", "True"]


def test_the_list_query_count_does_not_grow_with_rows(admin_client: Client, budgets: None) -> None:
    url = reverse("admin:handlers_agentbudget_changelist")
    admin_client.get(url)  # warm the session and content types
    with CaptureQueriesContext(connection) as three:
        admin_client.get(url)
    for n in range(5):
        AgentBudget.objects.create(handler=f"test.more{n}", daily_token_limit=n)
    with CaptureQueriesContext(connection) as eight:
        page = admin_client.get(url).content.decode()

    assert page.count("within budget") == 5  # more0 has 0 tokens of 0: exceeded
    assert len(eight.captured_queries) == len(three.captured_queries)


def test_the_form_refuses_negative_limits_and_accepts_zero(admin_client: Client) -> None:
    url = reverse("admin:handlers_agentbudget_add")
    data = {"handler": "test.agent", "daily_token_limit": "-1", "daily_cost_limit_usd": "-0.01"}

    response = admin_client.post(url, {**data, "enabled": "on"})

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors == {
        "daily_token_limit": ["Ensure this value is greater than or equal to 0."],
        "daily_cost_limit_usd": ["Ensure this value is greater than or equal to 0."],
    }
    assert not AgentBudget.objects.exists()

    response = admin_client.post(
        url,
        {
            "handler": "test.agent",
            "daily_token_limit": "0",
            "daily_cost_limit_usd": "0",
            "enabled": "on",
        },
    )
    assert response.status_code == 302
    budget = AgentBudget.objects.get()
    assert (budget.daily_token_limit, budget.daily_cost_limit_usd, budget.enabled) == (
        0,
        Decimal("0.00"),
        True,
    )


def test_a_handler_has_one_budget(admin_client: Client) -> None:
    AgentBudget.objects.create(handler="test.agent", daily_token_limit=1)
    response = admin_client.post(
        reverse("admin:handlers_agentbudget_add"), {"handler": "test.agent", "enabled": "on"}
    )
    assert response.context["adminform"].form.errors == {
        "handler": ["Agent budget with this Handler already exists."]
    }


def test_budgets_sit_after_usage_in_the_agents_app() -> None:
    order = extensions.admin_order()["handlers"]
    assert order.index("AgentBudget") == order.index("AgentUsage") + 1


def test_the_handler_is_chosen_from_the_registered_agents(admin_client: Client) -> None:
    url = reverse("admin:handlers_agentbudget_add")
    page = admin_client.get(url).content.decode()
    assert '<option value="test.agent">' in page
    assert '<option value="test.noop">' not in page  # a plain handler makes no model calls

    response = admin_client.post(url, {"handler": "paymnets.recovery", "enabled": "on"})

    assert response.context["adminform"].form.errors == {
        "handler": ["Select a valid choice. paymnets.recovery is not one of the available choices."]
    }
    assert not AgentBudget.objects.exists()
