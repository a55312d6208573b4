"""The admin for sources: secrets stay hidden and rotate, forms refuse bad input."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse

from events.models import Source
from events.webhooks import all_kind_names

from .helpers import form_errors, messages_of

pytestmark = pytest.mark.django_db

CURRENT = "whsec-current-0123456789-ABCD"
PREVIOUS = "whsec-previous-9876543210-WXYZ"
NEWEST = "whsec-newest-5555555555-QRST"
SOURCES = reverse("admin:events_source_changelist")


@pytest.fixture
def source(db: None) -> Source:
    return Source.objects.create(
        slug="shop", kind="hmac", secrets=[CURRENT, PREVIOUS], description="Shop orders"
    )


def source_form(source: Source, **changes: Any) -> dict[str, Any]:
    return {
        "slug": source.slug,
        "kind": source.kind,
        "enabled": "on" if source.enabled else "",
        "description": source.description,
        "settings": "{}",
        # What the browser sends back for a field with a callable default.
        "initial-settings": "{}",
        "new_secret": "",
        **changes,
    }


def change_url(source: Source) -> str:
    return reverse("admin:events_source_change", args=[source.pk])


def test_source_pages_never_show_a_secret(admin_client: Client, source: Source) -> None:
    # given a rotation done through the admin, so the history has an entry
    admin_client.post(change_url(source), source_form(source, new_secret=NEWEST))
    source.refresh_from_db()
    assert source.secrets == [NEWEST, CURRENT]
    pages = [
        SOURCES,
        change_url(source),
        reverse("admin:events_source_history", args=[source.pk]),
        reverse("admin:events_source_delete", args=[source.pk]),
        f"{SOURCES}?q=shop",
        reverse("admin:index"),
    ]

    # when every page about it is fetched
    answers = {url: admin_client.get(url) for url in pages}

    # then each renders and none holds any secret, old or new, or a large part of one
    assert {url: r.status_code for url, r in answers.items()} == dict.fromkeys(pages, 200)
    for url, response in answers.items():
        html = response.content.decode()
        for secret in (CURRENT, PREVIOUS, NEWEST):
            assert secret not in html, url
            assert secret[:-4] not in html, url
    assert "••••••••QRST (current), ••••••••ABCD (previous)" in answers[SOURCES].content.decode()
    assert 'name="secrets"' not in answers[change_url(source)].content.decode()
    assert 'name="new_secret"' in answers[change_url(source)].content.decode()
    entries = LogEntry.objects.filter(object_id=str(source.pk))
    assert [e.get_change_message() for e in entries] == ["Changed New secret."]


def test_short_secrets_are_masked_completely(admin_client: Client, hmac_source: Source) -> None:
    html = admin_client.get(SOURCES).content.decode()

    assert "•••••••• (current), •••••••• (previous)" in html
    assert "new-secret" not in html
    assert "old-secret" not in html


def test_a_new_secret_goes_first_and_only_two_are_kept(
    admin_client: Client, source: Source
) -> None:
    response = admin_client.post(change_url(source), source_form(source, new_secret=NEWEST))

    assert response.status_code == 302
    source.refresh_from_db()
    assert source.secrets == [NEWEST, CURRENT]


def test_drop_old_secrets_keeps_only_the_newest(admin_client: Client, source: Source) -> None:
    response = admin_client.post(change_url(source), source_form(source, drop_old_secrets="on"))

    assert response.status_code == 302
    source.refresh_from_db()
    assert source.secrets == [CURRENT]


def test_new_secret_and_drop_old_at_once_leaves_only_the_new_one(
    admin_client: Client, source: Source
) -> None:
    admin_client.post(
        change_url(source), source_form(source, new_secret=NEWEST, drop_old_secrets="on")
    )

    source.refresh_from_db()
    assert source.secrets == [NEWEST]


def test_saving_without_a_new_secret_keeps_the_secrets(
    admin_client: Client, source: Source
) -> None:
    admin_client.post(change_url(source), source_form(source, description="Renamed"))

    source.refresh_from_db()
    assert (source.description, source.secrets) == ("Renamed", [CURRENT, PREVIOUS])


def test_add_source_with_a_secret(admin_client: Client, db: None) -> None:
    response = admin_client.post(
        reverse("admin:events_source_add"),
        {
            "slug": "billing",
            "kind": "hmac",
            "enabled": "on",
            "settings": "{}",
            "new_secret": NEWEST,
        },
    )

    assert response.status_code == 302
    created = Source.objects.get(slug="billing")
    assert (created.kind, created.enabled, created.secrets) == ("hmac", True, [NEWEST])


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"new_secret": ""}, {"new_secret": ["A hmac source needs a signing secret."]}),
        (
            {"slug": "Bad Slug"},
            {
                "slug": [
                    "Enter a valid “slug” consisting of letters, numbers, underscores or hyphens."
                ]
            },
        ),
        (
            {"slug": "Shop"},
            {"slug": ["Use lowercase letters, digits, dashes and underscores."]},
        ),
        (
            {"kind": "carrier-pigeon"},
            {
                "kind": [
                    "Select a valid choice. carrier-pigeon is not one of the available choices."
                ]
            },
        ),
        (
            {"settings": "[1]"},
            {"settings": ['Must be a JSON object, e.g. {"header": "X-Signature"}.']},
        ),
    ],
)
def test_add_source_refuses_bad_input(
    admin_client: Client, db: None, changes: dict[str, str], errors: dict[str, list[str]]
) -> None:
    form = {"slug": "billing", "kind": "hmac", "settings": "{}", "new_secret": NEWEST, **changes}

    response = admin_client.post(reverse("admin:events_source_add"), form)

    assert form_errors(response) == errors
    assert NEWEST not in response.content.decode()
    assert not Source.objects.filter(slug__iexact="billing").exists()


def test_api_source_needs_no_secret(admin_client: Client, db: None) -> None:
    response = admin_client.post(
        reverse("admin:events_source_add"), {"slug": "partner-api", "kind": "api", "settings": "{}"}
    )

    assert response.status_code == 302
    assert Source.objects.get(slug="partner-api").secrets == []


def test_kind_choices_are_the_known_kinds(admin_client: Client, db: None) -> None:
    response = admin_client.get(reverse("admin:events_source_add"))

    field = response.context["adminform"].form.fields["kind"]
    assert [value for value, _ in field.choices] == all_kind_names()
    assert {"api", "hmac", "internal"} <= set(all_kind_names())


def test_enable_and_disable_actions(admin_client: Client, source: Source) -> None:
    other = Source.objects.create(slug="crm", kind="api", enabled=False)
    both = [source.pk, other.pk]

    disabled = admin_client.post(
        SOURCES, {"action": "disable", "_selected_action": both}, follow=True
    )
    enabled = admin_client.post(
        SOURCES, {"action": "enable", "_selected_action": both}, follow=True
    )

    assert messages_of(disabled) == ["Disabled 1 source(s)."]
    assert messages_of(enabled) == ["Enabled 2 source(s)."]
    assert list(Source.objects.order_by("slug").values_list("slug", "enabled")) == [
        ("crm", True),
        ("shop", True),
    ]


@pytest.mark.parametrize(
    ("settings_json", "error"),
    [
        ('{"timestamp_header": 5}', "timestamp_header must be a header name"),
        (
            '{"tolerance_seconds": 0}',
            "tolerance_seconds must be a whole number of seconds from 1 to 3600",
        ),
        (
            '{"dedupe_window_seconds": -1}',
            "dedupe_window_seconds must be a whole number of seconds from 0 to 604800",
        ),
    ],
)
def test_bad_hmac_replay_settings_are_refused_in_the_form(
    admin_client: Client, source: Source, settings_json: str, error: str
) -> None:
    response = admin_client.post(change_url(source), source_form(source, settings=settings_json))

    assert form_errors(response) == {"settings": [error]}
    source.refresh_from_db()
    assert source.settings == {}


def test_a_secret_the_kind_cannot_use_is_refused_in_the_form(
    admin_client: Client, db: None
) -> None:
    response = admin_client.post(
        reverse("admin:events_source_add"),
        {"slug": "payments", "kind": "stripe", "enabled": "on", "settings": "{}",
         "new_secret": "not-a-stripe-secret"},
    )  # fmt: skip

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "new_secret": ["a Stripe signing secret starts with whsec_"]
    }
    assert not Source.objects.filter(slug="payments").exists()
