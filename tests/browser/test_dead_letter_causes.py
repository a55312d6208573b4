"""Dead letters by cause in the browser: from the dead-letter list to the groups, then requeue
one group with its button (no console error, no CSP violation)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from events.models import Delivery, DeliveryStatus, Event, Source

from .conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def dead(routes: None, monkeypatch: pytest.MonkeyPatch) -> list[Delivery]:
    # nothing is sent: no worker runs in these tests
    monkeypatch.setattr("events.dispatch.enqueue", lambda jobs: None)
    source = Source.objects.create(slug="browser-dead", kind="api")
    made = []
    for n, handler in enumerate(["test.rebook", "test.rebook", "test.notify"]):
        event = Event.objects.create(
            source=source, external_id=f"b-{n}", type="x", payload={}, status="dead_lettered"
        )
        made.append(
            Delivery.objects.create(
                event=event,
                handler=handler,
                status=DeliveryStatus.DEAD_LETTERED,
                error_class="KeyError",
                last_error=f"guest {100 + n} has no booking",
                finished_at=timezone.now() - timedelta(minutes=n),
            )
        )
    return made


def test_an_operator_requeues_a_group_from_the_causes_page(
    browser: Any, live_server: Any, superuser: User, dead: list[Delivery]
) -> None:
    session = log_in(browser, live_server.url, superuser)
    session.visit(live_server.url + reverse("admin:events_deadletter_changelist"))

    session.page.get_by_role("link", name="By cause").click()
    session.page.wait_for_load_state("load")
    rows = session.page.locator("#causes tbody tr")
    assert rows.count() == 2
    assert "test.rebook" in rows.nth(0).inner_text()

    rows.nth(0).get_by_role("button", name="Requeue 2").click()
    session.page.wait_for_load_state("load")

    assert "2" in session.page.locator("ul.messagelist").inner_text()
    statuses = {d.handler + str(d.pk): d.status for d in Delivery.objects.all()}
    assert sorted(statuses.values()) == ["dead_lettered", "pending", "pending"]
    assert session.page.locator("#causes tbody tr").count() == 1
    assert session.problems == []
