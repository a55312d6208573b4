"""The agent trace in the admin: steps and totals on a delivery's page, totals in the deliveries
list, and the per agent per day usage page."""

from __future__ import annotations

import html as html_module
import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from events.models import Attempt, AttemptStatus, Delivery, DeliveryStatus, Event, Source
from handlers.admin.usage import usage_rows
from handlers.models import Step

pytestmark = pytest.mark.django_db


def agent_delivery(source: Source, external_id: str, handler: str, when: Any) -> Delivery:
    event = Event.objects.create(
        source=source, external_id=external_id, type="test.agent", payload={}, received_at=when
    )
    return Delivery.objects.create(
        event=event, handler=handler, status=DeliveryStatus.SUCCEEDED, attempts=2, total_attempts=2
    )


def llm(attempt: Attempt, number: int, when: Any, tokens: tuple[int, int], cost: str) -> Step:
    return Step.objects.create(
        attempt=attempt,
        number=number,
        kind="llm",
        name="claude-sonnet-5-5",
        input={"provider": "anthropic", "turn": number},
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        cache_read_tokens=7,
        cost_usd=Decimal(cost),
        latency_ms=812,
        stop_reason="end_turn",
        created_at=when,
    )


def tool(attempt: Attempt, number: int, when: Any) -> Step:
    return Step.objects.create(
        attempt=attempt,
        number=number,
        kind="tool",
        name="lookup_order",
        tool_kind="read",
        input={"order_id": "ord_7"},
        output='{"status": "shipped"}',
        latency_ms=3,
        created_at=when,
    )


@pytest.fixture
def traced() -> dict[str, Any]:
    """Two agent deliveries today (one over two attempts) and one yesterday."""
    now = timezone.localtime()
    today = now.replace(hour=12, minute=0, second=0, microsecond=0)
    yesterday = today - timedelta(days=1)
    old = today - timedelta(days=20)
    source = Source.objects.create(slug="agents", kind="api")

    first = agent_delivery(source, "e1", "test.agent", today)
    failed = Attempt.objects.create(delivery=first, number=1, status=AttemptStatus.FAILED)
    llm(failed, 1, today, (100, 0), "0.000300")
    ok = Attempt.objects.create(delivery=first, number=2, status=AttemptStatus.SUCCEEDED)
    llm(ok, 1, today, (420, 36), "0.005550")
    tool(ok, 2, today)
    llm(ok, 3, today, (510, 22), "0.002160")

    second = agent_delivery(source, "e2", "test.agent", today)
    llm(Attempt.objects.create(delivery=second, number=1), 1, today, (50, 5), "0.000225")

    other = agent_delivery(source, "e3", "test.other", yesterday)
    llm(Attempt.objects.create(delivery=other, number=1), 1, yesterday, (1000, 100), "0.004500")
    earlier = agent_delivery(source, "e4", "test.agent", yesterday)
    llm(Attempt.objects.create(delivery=earlier, number=1), 1, yesterday, (10, 1), "0.000045")

    too_old = agent_delivery(source, "e5", "test.agent", old)
    llm(Attempt.objects.create(delivery=too_old, number=1), 1, old, (9, 9), "1.000000")
    plain = agent_delivery(source, "e6", "test.plain", today)
    return {
        "first": first,
        "plain": plain,
        "today": today.date(),
        "yesterday": yesterday.date(),
    }


def text(html: str) -> str:
    return html_module.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip())


def test_the_delivery_page_shows_every_step_and_the_totals(
    admin_client: Client, traced: dict[str, Any]
) -> None:
    url = reverse("admin:events_delivery_change", args=[traced["first"].id])
    page = admin_client.get(url).content.decode()

    assert "Agent trace" in page
    trace = text(
        page[page.index('class="step-trace"') : page.index("</table>", page.index("step-trace"))]
    )
    assert trace == text(
        'class="step-trace"> attempt step kind model / tool input output / error tokens in / out '
        "cache write / read cost latency stop reason "
        '1 1 llm claude-sonnet-5-5 {"provider": "anthropic", "turn": 1} - 100 / 0 0 / 7 '
        "$0.000300 812 ms end_turn "
        '2 1 llm claude-sonnet-5-5 {"provider": "anthropic", "turn": 1} - 420 / 36 0 / 7 '
        "$0.005550 812 ms end_turn "
        '2 2 tool (read) lookup_order {"order_id": "ord_7"} {"status": "shipped"} 3 ms '
        '2 3 llm claude-sonnet-5-5 {"provider": "anthropic", "turn": 3} - 510 / 22 0 / 7 '
        "$0.002160 812 ms end_turn"
    )
    assert (
        "3 LLM calls, 1 tool calls; tokens 1,030 in / 58 out, cache 0 written / 21 read; "
        "cost $0.008010"
    ) in text(page)


def test_a_delivery_without_steps_shows_no_trace(
    admin_client: Client, traced: dict[str, Any]
) -> None:
    url = reverse("admin:events_delivery_change", args=[traced["plain"].id])
    page = admin_client.get(url).content.decode()
    assert "Agent trace" not in page
    assert "step-trace" not in page


def test_the_deliveries_list_shows_totals_for_the_rows_on_the_page(
    admin_client: Client, traced: dict[str, Any]
) -> None:
    page = admin_client.get(reverse("admin:events_delivery_changelist")).content.decode()

    cells = re.findall(
        r'<td class="field-tokens">(.*?)</td><td class="field-cost">(.*?)</td>', page
    )
    assert sorted(cells) == sorted(
        [
            ("-", "-"),
            ("9 in / 9 out", "$1.000000"),
            ("10 in / 1 out", "$0.000045"),
            ("1,000 in / 100 out", "$0.004500"),
            ("50 in / 5 out", "$0.000225"),
            ("1,030 in / 58 out", "$0.008010"),
        ]
    )


def test_usage_sums_per_handler_per_day_over_the_last_two_weeks(
    admin_client: Client, traced: dict[str, Any]
) -> None:
    today, yesterday = traced["today"], traced["yesterday"]
    rows = [
        (
            row["day"],
            row["handler"],
            row["deliveries"],
            row["llm_calls"],
            row["tool_calls"],
            row["input_tokens"],
            row["output_tokens"],
            row["cost_usd"],
        )
        for row in usage_rows()
    ]
    assert rows == [
        (today, "test.agent", 2, 4, 1, 1080, 63, Decimal("0.008235")),
        (yesterday, "test.agent", 1, 1, 0, 10, 1, Decimal("0.000045")),
        (yesterday, "test.other", 1, 1, 0, 1000, 100, Decimal("0.004500")),
    ]

    page = text(admin_client.get(reverse("admin:handlers_agentusage_changelist")).content.decode())
    assert f"{today:%Y-%m-%d} test.agent 2 4 1 1080 63 0 / 28 0.008235" in page
    assert f"{yesterday:%Y-%m-%d} test.agent 1 1 0 10 1 0 / 7 0.000045" in page
    assert f"{yesterday:%Y-%m-%d} test.other 1 1 0 1000 100 0 / 7 0.004500" in page
    assert "1.000000" not in page  # older than 14 days


def test_usage_page_is_read_only(admin_client: Client, traced: dict[str, Any]) -> None:
    assert admin_client.get(reverse("admin:handlers_agentusage_add")).status_code == 403
