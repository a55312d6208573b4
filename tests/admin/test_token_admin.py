"""The admin for API tokens: shown once after a redirect, never stored, revocable."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from events.models import ApiToken, Source
from events.tokens import authenticate, create_token

pytestmark = pytest.mark.django_db

TOKENS = reverse("admin:events_apitoken_changelist")
ADD = reverse("admin:events_apitoken_add")
# What a new token may do, as the add form asks it: publish into the default api source.
SCOPE = {"sources": ["api"], "can_publish": "on"}


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def form_errors(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 200, "the form was accepted"
    return {
        name: list(errors) for name, errors in response.context["adminform"].form.errors.items()
    }


# --- API tokens --------------------------------------------------------------------------


def test_token_pages_never_show_the_digest(admin_client: Client, db: None) -> None:
    record, token = create_token("ci")
    pages = [
        TOKENS,
        reverse("admin:events_apitoken_change", args=[record.pk]),
        reverse("admin:events_apitoken_history", args=[record.pk]),
        reverse("admin:events_apitoken_add"),
    ]

    answers = {url: admin_client.get(url) for url in pages}

    assert {url: r.status_code for url, r in answers.items()} == dict.fromkeys(pages, 200)
    for response in answers.values():
        html = response.content.decode()
        assert record.digest not in html
        assert token not in html
    assert record.prefix in answers[TOKENS].content.decode()


def test_adding_a_token_redirects_and_shows_it_exactly_once(
    admin_client: Client, db: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    # when a token is added
    added = admin_client.post(ADD, {"name": "deploy-bot", **SCOPE})

    # then the answer is a redirect to a page that shows the working token, uncached
    assert added.status_code == 302
    created = added["Location"]
    assert created.startswith("/admin/events/apitoken/created/")
    shown = admin_client.get(created)
    assert shown.status_code == 200
    token = shown.context["token"]
    record = ApiToken.objects.get(name="deploy-bot")
    assert authenticate(f"Bearer {token}") == record
    html = shown.content.decode()
    assert html.count(token) == 1
    assert f'value="{token}"' in html
    assert "no-store" in shown["Cache-Control"]
    assert messages_of(shown) == []

    # when the page is reloaded
    again = admin_client.get(created, follow=True)

    # then no token is made and the token is not shown again
    assert again.redirect_chain == [(TOKENS, 302)]
    assert token not in again.content.decode()
    assert messages_of(again) == [
        "That token was already shown; it cannot be shown again. "
        "If it was not copied, revoke it and add a new one."
    ]
    assert ApiToken.objects.count() == 1
    # and nothing kept it: not the session, the history, the list or a log line
    assert token not in str(dict(admin_client.session.items()))
    history = admin_client.get(reverse("admin:events_apitoken_history", args=[record.pk]))
    assert token not in history.content.decode()
    assert token not in admin_client.get(TOKENS).content.decode()
    assert [e.get_change_message() for e in LogEntry.objects.filter(object_id=str(record.pk))] == [
        "Added."
    ]
    assert token not in caplog.text


def test_created_page_of_another_session_shows_nothing(
    admin_client: Client, admin_user: Any, db: None
) -> None:
    created = admin_client.post(ADD, {"name": "deploy-bot", **SCOPE})["Location"]
    other = Client()
    other.force_login(admin_user)

    response = other.get(created)

    assert (response.status_code, response["Location"]) == (302, TOKENS)
    assert "token" not in (response.context or {})


def test_created_page_needs_add_permission(
    admin_client: Client, django_user_model: Any, db: None
) -> None:
    created = admin_client.post(ADD, {"name": "deploy-bot", **SCOPE})["Location"]
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_apitoken"))
    viewer = Client()
    viewer.force_login(user)

    assert viewer.get(created).status_code == 403


def test_adding_a_token_with_a_taken_name_is_refused(admin_client: Client, db: None) -> None:
    create_token("ci")

    response = admin_client.post(reverse("admin:events_apitoken_add"), {"name": "ci", **SCOPE})

    assert form_errors(response) == {"name": ["API token with this Name already exists."]}
    assert ApiToken.objects.count() == 1


def test_a_new_token_gets_the_sources_and_scopes_ticked(admin_client: Client, db: None) -> None:
    Source.objects.create(slug="orders", kind="api")
    Source.objects.create(slug="gh", kind="github")
    form = admin_client.get(ADD).context["adminform"].form
    assert [value for value, _ in form.fields["sources"].choices] == ["api", "orders"]

    added = admin_client.post(
        ADD, {"name": "orders-app", "sources": ["orders"], "can_publish": "on", "can_read": "on"}
    )

    assert added.status_code == 302
    record = ApiToken.objects.get(name="orders-app")
    assert (record.sources, record.all_sources, record.scopes) == (
        ["orders"],
        False,
        ["publish", "read"],
    )
    listed = admin_client.get(TOKENS).context["cl"].model_admin.scope(record)
    assert listed == "publish + read (orders)"


def test_a_token_that_may_do_nothing_is_refused(admin_client: Client, db: None) -> None:
    response = admin_client.post(ADD, {"name": "idle"})

    assert form_errors(response) == {
        "can_publish": ["A token must be allowed to publish, read, or both."],
        "sources": ["Tick at least one source, or all sources."],
    }
    assert not ApiToken.objects.exists()


def test_revoke_action_is_idempotent(admin_client: Client, db: None) -> None:
    record, token = create_token("ci")
    form = {"action": "revoke", "_selected_action": [record.pk]}

    first = admin_client.post(TOKENS, form, follow=True)
    revoked_at = ApiToken.objects.get(pk=record.pk).revoked_at
    second = admin_client.post(TOKENS, form, follow=True)

    assert messages_of(first) == ["Revoked 1 token(s)."]
    assert messages_of(second) == ["Revoked 0 token(s)."]
    assert revoked_at is not None
    assert ApiToken.objects.get(pk=record.pk).revoked_at == revoked_at
    assert authenticate(f"Bearer {token}") is None


def test_token_filter_by_state(admin_client: Client, db: None) -> None:
    create_token("active-one")
    revoked, _ = create_token("revoked-one")
    ApiToken.objects.filter(pk=revoked.pk).update(revoked_at="2025-01-01T00:00:00Z")

    active = admin_client.get(f"{TOKENS}?state=active").context["cl"].result_list
    gone = admin_client.get(f"{TOKENS}?state=revoked").context["cl"].result_list

    assert [t.name for t in active] == ["active-one"]
    assert [t.name for t in gone] == ["revoked-one"]


def test_revoke_button_on_the_token_page(admin_client: Client, db: None) -> None:
    record, token = create_token("ci")
    page = reverse("admin:events_apitoken_change", args=[record.pk])
    revoke = reverse("admin:events_apitoken_revoke", args=[record.pk])

    before = admin_client.get(page).content.decode()
    get = admin_client.get(revoke)
    first = admin_client.post(revoke, follow=True)
    second = admin_client.post(revoke, follow=True)

    assert (
        f'<form method="post" action="{revoke}" class="post-tool">'
        '<input type="hidden" name="csrfmiddlewaretoken"'
    ) in before
    assert '<button type="submit">Revoke</button>' in before
    assert get.status_code == 405
    assert first.redirect_chain == [(page, 302)]
    assert messages_of(first) == ["Revoked the token ci."]
    assert messages_of(second) == ["The token ci was already revoked."]
    assert 'class="post-tool"' not in first.content.decode()
    assert authenticate(f"Bearer {token}") is None
    assert [e.get_change_message() for e in LogEntry.objects.filter(object_id=str(record.pk))] == [
        "Revoked."
    ]


def test_revoke_button_needs_change_permission_and_csrf(
    admin_user: Any, django_user_model: Any, db: None
) -> None:
    record, token = create_token("ci")
    revoke = reverse("admin:events_apitoken_revoke", args=[record.pk])
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_apitoken"))
    viewer = Client()
    viewer.force_login(user)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(admin_user)

    page = viewer.get(reverse("admin:events_apitoken_change", args=[record.pk]))
    answers = [viewer.post(revoke).status_code, strict.post(revoke).status_code]

    assert 'class="post-tool"' not in page.content.decode()
    assert answers == [403, 403]
    assert authenticate(f"Bearer {token}") == record


def test_the_add_page_says_which_request_each_scope_allows(admin_client: Client) -> None:
    page = admin_client.get(ADD).content.decode()

    # (help texts are HTML in the admin: a path written "<id>" would vanish as a tag)
    assert "May POST /api/events." in page
    assert "May GET /api/events/{id}: read an event and its deliveries." in page
