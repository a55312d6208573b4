"""The time-range filter in the browser: an operator searches, types a from/to range into the
filter's inputs and applies it; the list narrows and keeps the search (no console error, no
CSP violation)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from events.models import Event, Source

from .conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def events(db: None) -> None:
    source = Source.objects.create(slug="browser-range", kind="api")
    for n in range(4):
        Event.objects.create(
            source=source,
            external_id=f"e-{n}",
            type="hotel.booking.created",
            payload={"guest": {"name": "Margaret" if n % 2 else "Ada"}},
            received_at=T0 + timedelta(hours=n),
        )


def test_an_operator_narrows_a_search_to_a_time_range(
    browser: Any, live_server: Any, superuser: User, events: None
) -> None:
    session = log_in(browser, live_server.url, superuser)
    session.visit(live_server.url + reverse("admin:events_event_changelist") + "?q=margaret")
    assert session.page.locator("#result_list tbody tr").count() == 2

    session.page.fill("#received_at__from", "2025-03-01T12:30")
    session.page.fill("#received_at__to", "2025-03-01T14:00")
    session.page.locator("form.time-range").get_by_role("button", name="Apply").click()
    session.page.wait_for_load_state("load")

    rows = session.page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert str(Event.objects.get(external_id="e-1").pk)[:8] in rows.nth(0).inner_text()
    # the search is kept
    assert session.page.input_value("#searchbar") == "margaret"
    assert session.page.input_value("#received_at__from") == "2025-03-01T12:30"
    assert session.problems == []
