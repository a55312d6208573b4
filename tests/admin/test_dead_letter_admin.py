"""The dead-letter list and requeue: bulk and row actions that are safe to click twice, from
the lists of dead letters, deliveries and events, behind CSRF and the change permission."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from events.models import DeliveryStatus, Event, EventStatus

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
