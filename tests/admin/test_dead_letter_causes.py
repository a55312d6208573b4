"""Dead letters by cause: grouped by handler, error class and fingerprint; a group is requeued,
resolved without running, or exported as a whole."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from events.dead_letters import fingerprint
from events.models import Delivery, DeliveryStatus, Event, EventStatus, Source

from .helpers import T0, Jobs, listed, make_delivery, make_event, messages_of

pytestmark = pytest.mark.django_db

CAUSES = reverse("admin:events_deadletter_causes")


def action_url(key: str, action: str) -> str:
    return reverse("admin:events_deadletter_cause_action", args=[key, action])


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("order 1234 not found", "order 98 not found"),
        (
            "no invoice 'in_1AbCdEf' for customer \"Margaret\"",
            "no invoice 'in_9Zz' for customer \"Li\"",
        ),
        (
            "GET https://api.example.com/orders/77 answered 503",
            "GET https://api.example.com/orders/12?x=1 answered 502",
        ),
        (
            "event 0b4c3a0e-8a52-4c5d-9b1e-2f3a4b5c6d7e is stale",
            "event 11111111-2222-4333-8444-555555555555 is stale",
        ),
        ("charge ch_3NfK2aL9xYz failed\ntraceback line", "charge ch_3QqQqQqQq failed"),
    ],
)
def test_occurrences_of_one_cause_share_a_fingerprint(one: str, other: str) -> None:
    assert fingerprint(one) == fingerprint(other)


def test_different_causes_have_different_fingerprints() -> None:
    assert fingerprint("order 12 not found") != fingerprint("order 12 was refunded")


@pytest.fixture
def dead(routes: None) -> dict[str, list[Delivery]]:
    """Three dead letters of one cause, one of another, one of another handler."""
    source = Source.objects.create(slug="causes", kind="api")

    def one(n: int, handler: str, error_class: str, message: str) -> Delivery:
        event = make_event(source, f"c-{n}", "scenario.reservation.cancelled", "dead_lettered", n)
        return make_delivery(
            event,
            handler,
            DeliveryStatus.DEAD_LETTERED,
            attempts=3,
            total_attempts=3,
            error_class=error_class,
            last_error=message,
            finished_at=T0 + timedelta(minutes=n),
        )

    return {
        "missing": [
            one(n, "test.rebook", "KeyError", f"guest {1000 + n} has no booking") for n in (1, 2, 3)
        ],
        "timeout": [one(4, "test.rebook", "TimeoutError", "upstream timed out after 30 s")],
        "notify": [one(5, "test.notify", "KeyError", "guest 7 has no booking")],
    }


def groups_on(page: Any) -> list[Any]:
    return list(page.context["groups"])


def test_the_page_groups_dead_letters_by_handler_error_class_and_fingerprint(
    admin_client: Client, dead: dict[str, list[Delivery]]
) -> None:
    page = admin_client.get(CAUSES)

    assert page.status_code == 200
    found = groups_on(page)
    assert [(g.handler, g.error_class, g.count) for g in found] == [
        ("test.rebook", "KeyError", 3),
        ("test.notify", "KeyError", 1),
        ("test.rebook", "TimeoutError", 1),
    ]
    biggest = found[0]
    assert biggest.fingerprint == "guest <n> has no booking"
    assert biggest.sample == "guest 1003 has no booking"  # the newest
    assert (biggest.first_seen, biggest.last_seen) == (
        T0 + timedelta(minutes=1),
        T0 + timedelta(minutes=3),
    )
    text = page.content.decode()
    assert "5 dead letters in 3 groups" in text
    # the count links to the dead-letter list of that group alone
    members = listed(
        admin_client, reverse("admin:events_deadletter_changelist") + f"?cause={biggest.key}"
    )
    assert sorted(d.pk for d in members) == sorted(d.pk for d in dead["missing"])


def test_requeueing_a_group_requeues_all_of_it_and_nothing_else(
    admin_client: Client,
    dead: dict[str, list[Delivery]],
    enqueued: list[Jobs],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    key = groups_on(admin_client.get(CAUSES))[0].key

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(action_url(key, "requeue"), follow=True)

    statuses = dict(Delivery.objects.values_list("pk", "status"))
    assert [statuses[d.pk] for d in dead["missing"]] == ["pending"] * 3
    assert statuses[dead["timeout"][0].pk] == statuses[dead["notify"][0].pk] == "dead_lettered"
    assert sorted(job[0] for jobs in enqueued for job in jobs) == sorted(
        d.pk for d in dead["missing"]
    )
    assert any("3" in message and "equeued" in message for message in messages_of(response))


def test_resolving_a_group_asks_first_then_closes_it_without_running(
    admin_client: Client,
    admin_user: Any,
    dead: dict[str, list[Delivery]],
    enqueued: list[Jobs],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    key = groups_on(admin_client.get(CAUSES))[0].key

    # the first POST only asks
    asked = admin_client.post(action_url(key, "resolve"))
    assert asked.status_code == 200
    assert "will be marked resolved and will not run again" in asked.content.decode()
    assert Delivery.objects.filter(status="resolved").count() == 0

    # confirmed, the group is resolved by this operator, and nothing is sent
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(action_url(key, "resolve"), {"confirm": "yes"})

    for delivery in dead["missing"]:
        delivery.refresh_from_db()
        assert (delivery.status, delivery.resolved_by) == ("resolved", admin_user.username)
        assert delivery.resolved_at is not None
        assert Event.objects.get(pk=delivery.event_id).status == EventStatus.PROCESSED
    assert enqueued == []
    assert LogEntry.objects.filter(change_message="Resolved without running it.").count() == 3
    # and the group is gone from the page, the others stay
    assert [g.count for g in groups_on(admin_client.get(CAUSES))] == [1, 1]


def test_groups_export_as_csv_and_json(
    admin_client: Client, dead: dict[str, list[Delivery]]
) -> None:
    as_json = admin_client.get(reverse("admin:events_deadletter_causes_export", args=["json"]))
    as_csv = admin_client.get(reverse("admin:events_deadletter_causes_export", args=["csv"]))

    groups = as_json.json()["groups"]
    assert [(g["handler"], g["count"]) for g in groups] == [
        ("test.rebook", 3),
        ("test.notify", 1),
        ("test.rebook", 1),
    ]
    assert sorted(groups[0]["delivery_ids"]) == sorted(d.pk for d in dead["missing"])
    rows = list(csv.DictReader(io.StringIO(as_csv.content.decode())))
    assert [(r["handler"], r["error_class"], r["count"]) for r in rows] == [
        ("test.rebook", "KeyError", "3"),
        ("test.notify", "KeyError", "1"),
        ("test.rebook", "TimeoutError", "1"),
    ]
    assert as_csv["Content-Disposition"].endswith('dead-letters-by-cause.csv"')


def test_a_viewer_sees_the_groups_but_cannot_act_on_them(
    django_user_model: Any, dead: dict[str, list[Delivery]]
) -> None:
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(codename="view_deadletter", content_type__app_label="events")
    )
    client = Client()
    client.force_login(user)

    page = client.get(CAUSES)
    key = groups_on(page)[0].key

    assert page.status_code == 200
    assert "Requeue 3" not in page.content.decode()
    assert client.post(action_url(key, "requeue")).status_code == 403
    assert client.post(action_url(key, "resolve"), {"confirm": "yes"}).status_code == 403
    assert Delivery.objects.filter(status="dead_lettered").count() == 5
