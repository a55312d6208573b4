"""The admin for events, deliveries and dead letters: lists, filters, search, requeue."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from events.models import DeliveryStatus, Event, EventStatus, Source

from .helpers import (
    DEAD,
    DELIVERIES,
    EVENTS,
    Jobs,
    assert_requeued,
    assert_still_dead,
    listed,
    messages_of,
    requeue_url,
    short,
)

pytestmark = pytest.mark.django_db

# --- Rendering ---------------------------------------------------------------------------


def test_every_pipeline_page_renders_with_data(admin_client: Client, data: dict[str, Any]) -> None:
    # given events with deliveries and attempts
    dead = data["dead_new"]
    pages = [
        reverse("admin:index"),
        EVENTS,
        reverse("admin:events_event_change", args=[data["cancelled"].pk]),
        reverse("admin:events_event_history", args=[data["cancelled"].pk]),
        DELIVERIES,
        reverse("admin:events_delivery_change", args=[dead.pk]),
        DEAD,
        reverse("admin:events_deadletter_change", args=[dead.pk]),
        reverse("admin:django_celery_beat_periodictask_changelist"),
        reverse("admin:django_celery_results_taskresult_changelist"),
    ]

    # when each page is fetched, then each renders
    assert {url: admin_client.get(url).status_code for url in pages} == dict.fromkeys(pages, 200)


def test_site_is_branded_switchyard(admin_client: Client) -> None:
    response = admin_client.get(reverse("admin:index"))

    assert response.context["site_header"] == "Switchyard"
    assert response.context["site_title"] == "Switchyard"
    assert "<title>Operations | Switchyard</title>" in response.content.decode()


def test_event_list_counts_deliveries_newest_first(
    admin_client: Client, data: dict[str, Any]
) -> None:
    rows = listed(admin_client, EVENTS)

    assert [(e.external_id, e.delivery_count) for e in rows] == [
        ("ord_3", 0),
        ("ord_2", 2),
        ("ord_1", 1),
    ]


def test_event_page_shows_deliveries_and_payload(
    admin_client: Client, data: dict[str, Any]
) -> None:
    event = data["cancelled"]

    response = admin_client.get(reverse("admin:events_event_change", args=[event.pk]))

    html = response.content.decode()
    for dead in (data["dead_old"], data["dead_new"]):
        link = reverse("admin:events_delivery_change", args=[dead.pk])
        assert f'<a href="{link}">{dead.handler}</a>' in html
    assert "payload-marker" in html
    # Read-only: nothing to save, no inline inputs, no inline rows to add.
    assert 'name="_save"' not in html
    assert 'name="deliveries-0-status"' not in html
    assert 'name="deliveries-MAX_NUM_FORMS" value="0"' in html


def test_delivery_page_shows_attempts_with_collapsed_traceback(
    admin_client: Client, data: dict[str, Any]
) -> None:
    dead = data["dead_new"]

    response = admin_client.get(reverse("admin:events_delivery_change", args=[dead.pk]))

    html = response.content.decode()
    assert html.count("<details><summary>show</summary><pre>Traceback") == 3
    assert "attempt 2 frame-marker" in html
    assert "celery@w1" in html
    assert 'name="_save"' not in html


def test_deliveries_and_events_cannot_be_added_edited_or_deleted_by_hand(
    admin_client: Client, data: dict[str, Any]
) -> None:
    dead = data["dead_new"]
    change = reverse("admin:events_delivery_change", args=[dead.pk])

    answers = [
        admin_client.get(reverse("admin:events_delivery_add")).status_code,
        admin_client.get(reverse("admin:events_event_add")).status_code,
        admin_client.get(reverse("admin:events_deadletter_add")).status_code,
        admin_client.post(change, {"status": "succeeded", "handler": "x"}).status_code,
        admin_client.post(
            reverse("admin:events_delivery_delete", args=[dead.pk]), {"post": "yes"}
        ).status_code,
    ]

    assert answers == [403, 403, 403, 403, 403]
    dead.refresh_from_db()
    assert (dead.status, dead.handler) == (DeliveryStatus.DEAD_LETTERED, "test.rebook")


# --- Search and filters ------------------------------------------------------------------


def test_event_search_by_uuid_finds_exactly_that_event(
    admin_client: Client, data: dict[str, Any]
) -> None:
    event = data["cancelled"]

    rows = listed(admin_client, f"{EVENTS}?q={event.pk}")

    assert [e.pk for e in rows] == [event.pk]


def test_event_search_by_unknown_uuid_finds_nothing(
    admin_client: Client, data: dict[str, Any]
) -> None:
    assert listed(admin_client, f"{EVENTS}?q={uuid.uuid4()}") == []


def test_event_search_by_external_id_and_type_prefix(
    admin_client: Client, data: dict[str, Any]
) -> None:
    by_external_id = listed(admin_client, f"{EVENTS}?q=ord_1")
    by_type = listed(admin_client, f"{EVENTS}?q=shop.order.")

    assert [e.external_id for e in by_external_id] == ["ord_1"]
    assert [e.external_id for e in by_type] == ["ord_3", "ord_1"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=dead_lettered", ["ord_2"]),
        ("status=ignored", ["ord_3"]),
        ("type=shop.order.paid", ["ord_1"]),
        ("source__id__exact={api}", ["ord_3"]),
        ("received_at__year=2025&received_at__month=3", ["ord_3", "ord_2", "ord_1"]),
        ("received_at__year=2024", []),
    ],
)
def test_event_filters(
    admin_client: Client, data: dict[str, Any], query: str, expected: list[str]
) -> None:
    api = Source.objects.get(slug="api")

    rows = listed(admin_client, f"{EVENTS}?{query.format(api=api.pk)}")

    assert [e.external_id for e in rows] == expected


def test_event_type_filter_offers_recent_types(admin_client: Client, data: dict[str, Any]) -> None:
    response = admin_client.get(EVENTS)

    spec = next(f for f in response.context["cl"].filter_specs if f.title == "type")
    assert [value for value, _ in spec.lookup_choices] == [
        "scenario.reservation.cancelled",
        "shop.order.paid",
        "shop.order.refunded",
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=dead_lettered", ["dead_new", "dead_old"]),
        ("status=succeeded", ["ok"]),
        ("handler=test.notify", ["dead_old"]),
        ("error_class=KeyError", ["dead_new"]),
        ("q={event}", ["dead_new", "dead_old"]),
        ("q=test.rebook", ["dead_new", "ok"]),
    ],
)
def test_delivery_filters_and_search(
    admin_client: Client, data: dict[str, Any], query: str, expected: list[str]
) -> None:
    names = {data[name].pk: name for name in ("ok", "dead_old", "dead_new")}

    rows = listed(admin_client, f"{DELIVERIES}?{query.format(event=data['cancelled'].pk)}")

    assert sorted(names[d.pk] for d in rows) == expected


def test_delivery_search_by_id(admin_client: Client, data: dict[str, Any]) -> None:
    rows = listed(admin_client, f"{DELIVERIES}?q={data['ok'].pk}")

    assert [d.pk for d in rows] == [data["ok"].pk]


# --- Dead letters ------------------------------------------------------------------------


def test_dead_letter_list_shows_only_dead_letters_newest_first(
    admin_client: Client, data: dict[str, Any]
) -> None:
    rows = listed(admin_client, DEAD)

    assert [d.pk for d in rows] == [data["dead_new"].pk, data["dead_old"].pk]


def test_dead_letter_list_has_a_requeue_button_per_row(
    admin_client: Client, data: dict[str, Any]
) -> None:
    html = admin_client.get(DEAD).content.decode()

    for dead in (data["dead_new"], data["dead_old"]):
        assert (
            '<button type="submit" class="button" form="changelist-form" formmethod="post" '
            f'formaction="{requeue_url(dead.pk)}">Requeue</button>'
        ) in html
    assert html.count(">Requeue</button>") == 2
    assert "ValueError: guest record is incomplete" in html


def test_bulk_requeue_requeues_once_and_a_second_click_does_nothing(
    admin_client: Client,
    data: dict[str, Any],
    enqueued: list[Jobs],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    dead_new, dead_old = data["dead_new"], data["dead_old"]
    form = {"action": "requeue_selected", "_selected_action": [dead_new.pk, dead_old.pk]}

    # when the action is posted
    with django_capture_on_commit_callbacks(execute=True):
        first = admin_client.post(DEAD, form, follow=True)

    # then both are pending with fresh attempts, each sent once, and the event is back to work
    assert messages_of(first) == ["Requeued 2 deliveries."]
    assert_requeued(dead_new)
    assert_requeued(dead_old)
    assert sorted(enqueued) == sorted(
        [[(dead_new.pk, "default", 60)], [(dead_old.pk, "default", 60)]]
    )
    assert Event.objects.get(pk=data["cancelled"].pk).status == EventStatus.PROCESSING
    assert listed(admin_client, DEAD) == []

    # when the same form is posted again (a double click)
    with django_capture_on_commit_callbacks(execute=True):
        second = admin_client.post(DEAD, form, follow=True)

    # then nothing more happens
    assert messages_of(second) == [
        "Nothing was requeued. 2 were no longer dead-lettered and were left alone."
    ]
    assert len(enqueued) == 2


def test_requeue_action_on_all_deliveries_skips_live_ones(
    admin_client: Client,
    data: dict[str, Any],
    enqueued: list[Jobs],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    ok, dead = data["ok"], data["dead_old"]
    form = {"action": "requeue_selected", "_selected_action": [ok.pk, dead.pk]}

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(DELIVERIES, form, follow=True)

    assert messages_of(response) == [
        f"Requeued delivery {dead.pk} (test.notify for event {short(dead.event)}). "
        "1 was no longer dead-lettered and was left alone."
    ]
    assert enqueued == [[(dead.pk, "default", 60)]]
    ok.refresh_from_db()
    assert ok.status == DeliveryStatus.SUCCEEDED


def test_event_action_requeues_its_dead_letters(
    admin_client: Client,
    data: dict[str, Any],
    enqueued: list[Jobs],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    form = {"action": "requeue_dead_letters", "_selected_action": [data["cancelled"].pk]}

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(EVENTS, form, follow=True)

    assert messages_of(response) == ["Requeued 2 deliveries."]
    assert len(enqueued) == 2
    assert_requeued(data["dead_new"])


def test_row_requeue_requeues_once_and_a_second_click_does_nothing(
    admin_client: Client,
    data: dict[str, Any],
    enqueued: list[Jobs],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    dead, other = data["dead_new"], data["dead_old"]

    # when one row's button is clicked (from a filtered list)
    with django_capture_on_commit_callbacks(execute=True):
        first = admin_client.post(
            requeue_url(dead.pk),
            headers={"referer": f"http://testserver{DEAD}?handler=test.rebook"},
            follow=True,
        )

    # then only that row is requeued, sent once, and the operator is back on the same list
    assert first.redirect_chain == [(f"http://testserver{DEAD}?handler=test.rebook", 302)]
    assert messages_of(first) == [
        f"Requeued delivery {dead.pk} (test.rebook for event {short(dead.event)})."
    ]
    assert_requeued(dead)
    assert_still_dead(other)
    assert enqueued == [[(dead.pk, "default", 60)]]

    # when it is clicked again
    with django_capture_on_commit_callbacks(execute=True):
        second = admin_client.post(requeue_url(dead.pk), follow=True)

    # then nothing more happens, and the operator is told so
    assert second.redirect_chain == [(DEAD, 302)]
    assert messages_of(second) == [
        "Nothing was requeued. 1 was no longer dead-lettered and was left alone."
    ]
    assert len(enqueued) == 1


def test_row_requeue_records_who_did_it(admin_client: Client, data: dict[str, Any]) -> None:
    dead = data["dead_new"]

    admin_client.post(requeue_url(dead.pk))

    history = admin_client.get(reverse("admin:events_delivery_history", args=[dead.pk]))
    assert "Requeued from the dead-letter state." in history.content.decode()


def test_row_requeue_ignores_a_foreign_referer(admin_client: Client, data: dict[str, Any]) -> None:
    response = admin_client.post(
        requeue_url(data["dead_new"].pk), headers={"referer": "https://evil.example/admin/"}
    )

    assert (response.status_code, response["Location"]) == (302, DEAD)


def test_get_on_requeue_url_changes_nothing(
    admin_client: Client,
    data: dict[str, Any],
    enqueued: list[Jobs],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    dead = data["dead_new"]

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.get(requeue_url(dead.pk))

    assert response.status_code == 405
    assert_still_dead(dead)
    assert enqueued == []


def test_requeue_url_needs_a_csrf_token(
    admin_user: Any, data: dict[str, Any], enqueued: list[Jobs]
) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    dead = data["dead_new"]

    response = client.post(requeue_url(dead.pk))

    assert response.status_code == 403
    assert_still_dead(dead)


def test_requeue_url_with_the_list_csrf_token_works(
    admin_user: Any,
    data: dict[str, Any],
    enqueued: list[Jobs],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    # given the token the change list form carries (what the row button submits)
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    page = client.get(DEAD)
    token = page.context["csrf_token"]
    dead = data["dead_new"]

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(requeue_url(dead.pk), {"csrfmiddlewaretoken": token})

    assert response.status_code == 302
    assert_requeued(dead)
    assert enqueued == [[(dead.pk, "default", 60)]]


def test_requeue_needs_change_permission(
    django_user_model: Any, data: dict[str, Any], enqueued: list[Jobs]
) -> None:
    # given a staff user who may only look at dead letters
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(codename="view_deadletter", content_type__app_label="events")
    )
    client = Client()
    client.force_login(user)
    dead = data["dead_new"]

    page = client.get(DEAD)
    response = client.post(requeue_url(dead.pk))
    action = client.post(DEAD, {"action": "requeue_selected", "_selected_action": [dead.pk]})

    assert page.status_code == 200
    assert ">Requeue</button>" not in page.content.decode()
    assert response.status_code == 403
    # Without the permission the action is not offered; Django answers with the list again.
    assert action.status_code == 200
    assert_still_dead(dead)


@pytest.mark.django_db(transaction=True)
def test_requeue_sends_one_real_message(
    admin_client: Client, data: dict[str, Any], redis_server: Any
) -> None:
    # given the private Redis as the broker, with the default queue empty
    broker = redis_server.client()
    broker.delete("default")
    dead = data["dead_new"]

    # when the row is requeued twice
    admin_client.post(requeue_url(dead.pk))
    admin_client.post(requeue_url(dead.pk))

    # then exactly one message is waiting for a worker
    assert broker.llen("default") == 1
    assert_requeued(dead)
    broker.delete("default")
