"""The time-range filter on every list of records (events.admin.filters.TimeRangeFilter): from
and to narrow the list (the end not included), the quick choices reach back from now, and a
value that is not a time is ignored with a warning instead of an error page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from events.models import Delivery, RejectedRequest, ScheduleTick, Source
from handlers.models import Approval

from .helpers import DEAD, DELIVERIES, EVENTS, T0, listed, messages_of

pytestmark = pytest.mark.django_db

REJECTED = reverse("admin:events_rejectedrequest_changelist")
TICKS = reverse("admin:events_scheduletick_changelist")
APPROVALS = reverse("admin:handlers_approval_changelist")


def at(minutes: int) -> str:
    """T0 plus ``minutes``, as a datetime-local input sends it."""
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def timed(data: dict[str, Any]) -> dict[str, Any]:
    """Rows one to three minutes (and, for finished deliveries, ten and twenty minutes) after
    T0 in every list that has the filter. Events: ord_1 at +1, ord_2 at +2, ord_3 at +3."""
    for name, minutes in (("ok", 1), ("dead_old", 2), ("dead_new", 3)):
        Delivery.objects.filter(pk=data[name].pk).update(created_at=T0 + timedelta(minutes=minutes))
    source = Source.objects.get(slug="shop")
    for minutes in (1, 2, 3):
        RejectedRequest.objects.create(
            received_at=T0 + timedelta(minutes=minutes),
            endpoint="hooks",
            slug=f"r{minutes}",
            source=source,
            status=401,
            reason="bad signature",
            method="POST",
            path="/hooks/shop",
        )
        ScheduleTick.objects.create(
            name=f"t{minutes}",
            key=f"t@{minutes}",
            due_at=T0 + timedelta(minutes=minutes),
            status="published",
        )
        Approval.objects.create(
            delivery=data["ok"],
            agent=f"a{minutes}",
            tool="send_email",
            input={},
            idempotency_key=f"k{minutes}",
            created_at=T0 + timedelta(minutes=minutes),
        )
    return data


def names(url: str, row: Any, data: dict[str, Any]) -> str:
    """What identifies a row of ``url`` in these tests."""
    if url == EVENTS:
        return str(row.external_id)
    if url in (DELIVERIES, DEAD):
        return next(name for name in ("ok", "dead_old", "dead_new") if data[name].pk == row.pk)
    if url == REJECTED:
        return str(row.slug)
    if url == TICKS:
        return str(row.name)
    return str(row.agent)


@pytest.mark.parametrize(
    ("url", "field", "expected"),
    [
        (EVENTS, "received_at", ["ord_2"]),
        (DELIVERIES, "created_at", ["dead_old"]),
        (REJECTED, "received_at", ["r2"]),
        (TICKS, "due_at", ["t2"]),
        (APPROVALS, "created_at", ["a2"]),
    ],
)
def test_from_and_to_narrow_each_list_to_the_range(
    admin_client: Client, timed: dict[str, Any], url: str, field: str, expected: list[str]
) -> None:
    # from +2 (included) to +3 (not included)
    query = f"{field}__from={at(2)}&{field}__to={at(3)}"

    rows = listed(admin_client, f"{url}?{query}")

    assert [names(url, row, timed) for row in rows] == expected


@pytest.mark.parametrize(
    ("url", "query", "expected"),
    [
        (DELIVERIES, f"finished_at__from={at(15)}", ["dead_new"]),
        (DELIVERIES, f"finished_at__to={at(15)}", ["dead_old"]),
        (DEAD, f"finished_at__from={at(10)}&finished_at__to={at(20)}", ["dead_old"]),
        (EVENTS, "received_at__from=2025-03-01", ["ord_3", "ord_2", "ord_1"]),
        (EVENTS, "received_at__to=2025-03-01 12:02:30", ["ord_2", "ord_1"]),
        (EVENTS, "received_at__from=2025-03-01T14:00%2B02:00", ["ord_3", "ord_2", "ord_1"]),
        (EVENTS, "received_at__from=2025-03-01T14:03%2B02:00", ["ord_3"]),
    ],
)
def test_one_sided_ranges_days_and_offsets(
    admin_client: Client, timed: dict[str, Any], url: str, query: str, expected: list[str]
) -> None:
    rows = listed(admin_client, f"{url}?{query}")

    assert [names(url, row, timed) for row in rows] == expected


def test_quick_choice_reaches_back_from_now(admin_client: Client, timed: dict[str, Any]) -> None:
    # given one event received half an hour ago and one two hours ago
    from events.models import Event

    now = timezone.now()
    Event.objects.filter(external_id="ord_1").update(received_at=now - timedelta(minutes=30))
    Event.objects.filter(external_id="ord_2").update(received_at=now - timedelta(hours=2))

    last_hour = listed(admin_client, f"{EVENTS}?received_at__last=1h")
    last_day = listed(admin_client, f"{EVENTS}?received_at__last=24h")

    assert [e.external_id for e in last_hour] == ["ord_1"]
    assert [e.external_id for e in last_day] == ["ord_1", "ord_2"]


@pytest.mark.parametrize(
    ("query", "warning"),
    [
        (
            "received_at__from=yesterday",
            "The received at filter ignored the from time 'yesterday': not a date and time "
            "such as 2025-03-01 12:00.",
        ),
        (
            "received_at__to=2025-13-45T99:00",
            "The received at filter ignored the to time '2025-13-45T99:00': not a date and "
            "time such as 2025-03-01 12:00.",
        ),
        (
            "received_at__from=0001-01-01T00:00%2B05:00",
            "The received at filter ignored the from time '0001-01-01T00:00+05:00': not a date "
            "and time such as 2025-03-01 12:00.",
        ),
        (
            "received_at__last=forever",
            "The received at filter ignored a period of 'forever': choose one of the listed ones.",
        ),
    ],
)
def test_a_malformed_value_is_ignored_with_a_warning(
    admin_client: Client, timed: dict[str, Any], query: str, warning: str
) -> None:
    response = admin_client.get(f"{EVENTS}?{query}")

    assert response.status_code == 200
    assert [e.external_id for e in response.context["cl"].result_list] == [
        "ord_3",
        "ord_2",
        "ord_1",
    ]
    assert messages_of(response) == [warning]


def test_the_form_keeps_the_lists_other_parameters(
    admin_client: Client, timed: dict[str, Any]
) -> None:
    response = admin_client.get(f"{EVENTS}?status=dead_lettered&q=ord&received_at__last=7d")
    html = response.content.decode()

    # the list's filter and search ride along; the quick choice is replaced by the form's range
    form = html[html.index('<form method="get" class="time-range">') :]
    form = form[: form.index("</form>")]
    assert '<input type="hidden" name="status" value="dead_lettered">' in form
    assert '<input type="hidden" name="q" value="ord">' in form
    assert "received_at__last" not in form
    assert 'name="received_at__from"' in form
    assert 'name="received_at__to"' in form


def test_a_quick_choice_link_drops_a_typed_range(
    admin_client: Client, timed: dict[str, Any]
) -> None:
    response = admin_client.get(f"{EVENTS}?status=processed&received_at__from={at(1)}")

    spec = next(f for f in response.context["cl"].filter_specs if f.title == "received at")
    choices = {c["display"]: c["query_string"] for c in spec.choices(response.context["cl"])}
    assert choices == {
        "Any time": "?status=processed",
        "Last hour": "?received_at__last=1h&status=processed",
        "Last 24 hours": "?received_at__last=24h&status=processed",
        "Last 7 days": "?received_at__last=7d&status=processed",
    }
