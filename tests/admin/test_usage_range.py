"""The agent usage page over a from/to range (handlers.admin.usage): the same query-string names
as the lists' time-range filter, and a malformed value ignored with a warning."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from events.models import Attempt
from handlers.models import Step

from .helpers import T0, messages_of

pytestmark = pytest.mark.django_db

USAGE = reverse("admin:handlers_agentusage_changelist")


@pytest.fixture
def steps(data: dict[str, Any]) -> None:
    """One LLM call of test.notify on each of three days: T0, T0 + 1 day, T0 + 2 days."""
    attempt = Attempt.objects.get(delivery=data["dead_old"], number=1)
    for day in range(3):
        Step.objects.create(
            attempt=attempt,
            number=10 + day,
            kind="llm",
            name="claude",
            input_tokens=100 + day,
            created_at=T0 + timedelta(days=day),
        )


def test_usage_page_sums_the_steps_in_the_range(admin_client: Client, steps: None) -> None:
    response = admin_client.get(
        f"{USAGE}?created_at__from=2025-03-02T00:00&created_at__to=2025-03-03T00:00"
    )

    assert response.status_code == 200
    assert [(r["day"].isoformat(), r["input_tokens"]) for r in response.context["rows"]] == [
        ("2025-03-02", 101)
    ]
    assert response.context["title"] == "Agent usage, from 2025-03-02 00:00, to 2025-03-03 00:00"


def test_usage_page_from_only(admin_client: Client, steps: None) -> None:
    response = admin_client.get(f"{USAGE}?created_at__from=2025-03-02")

    assert [r["input_tokens"] for r in response.context["rows"]] == [102, 101]


def test_usage_page_ignores_a_malformed_time(admin_client: Client, steps: None) -> None:
    response = admin_client.get(f"{USAGE}?created_at__from=last-week")

    assert response.status_code == 200
    # the default: the last 14 days, which these 2025 steps are not in
    assert response.context["rows"] == []
    assert messages_of(response) == [
        "Ignored the from time 'last-week': not a date and time such as 2025-03-01 12:00."
    ]
