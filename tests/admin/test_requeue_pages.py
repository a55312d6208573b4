"""Requeue on the detail pages of a delivery, a dead letter and an event, and what its message
says."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from events.models import Delivery, DeliveryStatus

from .helpers import (
    DEAD,
    Jobs,
    assert_requeued,
    assert_still_dead,
    delivery_page,
    event_page,
    messages_of,
    requeue_url,
    short,
)

pytestmark = pytest.mark.django_db


def event_requeue_url(pk: Any) -> str:
    return reverse("admin:events_event_requeue", args=[pk])


def has_post_tool(html: str, url: str, label: str) -> bool:
    """Whether the page's object tools hold a button posting to ``url`` with a CSRF token."""
    form = (
        f'<form method="post" action="{url}" class="post-tool">'
        '<input type="hidden" name="csrfmiddlewaretoken"'
    )
    return form in html and f'<button type="submit">{label}</button>' in html


# --- Requeue from the detail pages -------------------------------------------------------


def test_delivery_page_offers_requeue_only_for_a_dead_letter(
    admin_client: Client, data: dict[str, Any]
) -> None:
    dead, ok = data["dead_new"], data["ok"]
    dead_letter_page = reverse("admin:events_deadletter_change", args=[dead.pk])

    pages = {
        url: admin_client.get(url).content.decode()
        for url in (delivery_page(dead), dead_letter_page)
    }
    finished = admin_client.get(delivery_page(ok)).content.decode()

    for html in pages.values():
        assert has_post_tool(html, requeue_url(dead.pk), "Requeue")
    assert 'class="post-tool"' not in finished


def test_requeue_from_the_delivery_page(
    admin_client: Client,
    data: dict[str, Any],
    enqueued: list[Jobs],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    dead = data["dead_new"]
    page = f"http://testserver{delivery_page(dead)}"

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(requeue_url(dead.pk), headers={"referer": page}, follow=True)

    assert response.redirect_chain == [(delivery_page(dead), 302)]
    assert messages_of(response) == [
        f"Requeued delivery {dead.pk} (test.rebook for event {short(dead.event)})."
    ]
    assert_requeued(dead)
    assert enqueued == [[(dead.pk, "default", 60)]]
    assert 'class="post-tool"' not in response.content.decode()


def test_requeue_from_the_dead_letter_page_lands_on_the_delivery(
    admin_client: Client, data: dict[str, Any], enqueued: list[Jobs]
) -> None:
    dead = data["dead_old"]
    page = reverse("admin:events_deadletter_change", args=[dead.pk])

    response = admin_client.post(
        requeue_url(dead.pk), headers={"referer": f"http://testserver{page}"}
    )

    assert (response.status_code, response["Location"]) == (302, delivery_page(dead))


def test_event_page_offers_requeue_of_its_dead_letters(
    admin_client: Client, data: dict[str, Any]
) -> None:
    cancelled = admin_client.get(event_page(data["cancelled"].pk)).content.decode()
    paid = admin_client.get(event_page(data["paid"].pk)).content.decode()
    Delivery.objects.filter(pk=data["dead_old"].pk).update(status=DeliveryStatus.SUCCEEDED)
    one_left = admin_client.get(event_page(data["cancelled"].pk)).content.decode()

    url = event_requeue_url(data["cancelled"].pk)
    assert has_post_tool(cancelled, url, "Requeue its 2 dead letters")
    assert has_post_tool(one_left, url, "Requeue its dead letter")
    assert 'class="post-tool"' not in paid


def test_requeue_from_the_event_page_requeues_all_its_dead_letters(
    admin_client: Client,
    data: dict[str, Any],
    enqueued: list[Jobs],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    event = data["cancelled"]

    with django_capture_on_commit_callbacks(execute=True):
        first = admin_client.post(event_requeue_url(event.pk), follow=True)
    with django_capture_on_commit_callbacks(execute=True):
        second = admin_client.post(event_requeue_url(event.pk), follow=True)

    assert first.redirect_chain == [(event_page(event.pk), 302)]
    assert messages_of(first) == ["Requeued 2 deliveries."]
    assert messages_of(second) == ["Nothing was requeued."]
    assert_requeued(data["dead_new"])
    assert_requeued(data["dead_old"])
    assert len(enqueued) == 2


def test_event_requeue_refuses_get_and_users_without_change_permission(
    django_user_model: Any, admin_client: Client, data: dict[str, Any], enqueued: list[Jobs]
) -> None:
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_event", "view_delivery"], content_type__app_label="events"
        )
    )
    viewer = Client()
    viewer.force_login(user)
    event, dead = data["cancelled"], data["dead_new"]

    get = admin_client.get(event_requeue_url(event.pk))
    page = viewer.get(event_page(event.pk))
    delivery = viewer.get(delivery_page(dead))
    post = viewer.post(event_requeue_url(event.pk))

    assert (get.status_code, page.status_code, delivery.status_code) == (405, 200, 200)
    assert 'class="post-tool"' not in page.content.decode()
    assert 'class="post-tool"' not in delivery.content.decode()
    assert post.status_code == 403
    assert_still_dead(dead)
    assert enqueued == []


def test_event_requeue_needs_a_csrf_token(admin_user: Any, data: dict[str, Any]) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)

    response = client.post(event_requeue_url(data["cancelled"].pk))

    assert response.status_code == 403
    assert_still_dead(data["dead_new"])


# --- Requeue messages --------------------------------------------------------------------


def test_requeue_message_for_one_among_several_ticked(
    admin_client: Client, data: dict[str, Any], enqueued: list[Jobs]
) -> None:
    # given two ticked dead letters, one of which someone else requeued meanwhile
    dead, gone = data["dead_old"], data["dead_new"]
    Delivery.objects.filter(pk=gone.pk).update(status=DeliveryStatus.PENDING)
    form = {"action": "requeue_selected", "_selected_action": [dead.pk, gone.pk]}

    response = admin_client.post(DEAD, form, follow=True)

    assert messages_of(response) == [
        f"Requeued delivery {dead.pk} (test.notify for event {short(dead.event)}). "
        "1 was no longer dead-lettered and was left alone."
    ]
    assert_requeued(dead)
