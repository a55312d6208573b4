"""manage.py publish_event, create_source and create_api_token."""

from __future__ import annotations

import json
import uuid
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from events.models import ApiToken, Delivery, Event, Source

from .conftest import CANCELLED, PAYLOAD_ERROR, TYPE_ERROR, stored

pytestmark = pytest.mark.django_db


def run(name: str, *args: str) -> tuple[str, str]:
    """Run a command; return (stdout, stderr)."""
    out, err = StringIO(), StringIO()
    call_command(name, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# --- publish_event ----------------------------------------------------------------------------


def test_publish_event_prints_the_event_id(
    hmac_source: Source, routes: None, django_capture_on_commit_callbacks: Any
) -> None:
    # when
    with django_capture_on_commit_callbacks() as callbacks:
        out, err = run(
            "publish_event",
            "--source=shop",
            f"--type={CANCELLED}",
            '--payload={"guest": "Ann"}',
            "--external-id=evt_1",
            "--partition-key=r1",
        )
    # then
    event = Event.objects.get()
    assert out == f"{event.id}\n"
    assert err == "received, 2 deliveries\n"
    assert (event.source, event.type, event.external_id, event.partition_key) == (
        hmac_source,
        CANCELLED,
        "evt_1",
        "r1",
    )
    assert event.payload == {"guest": "Ann"}
    assert Delivery.objects.count() == 2
    assert len(callbacks) == 1


def test_publish_event_defaults_to_an_empty_payload(hmac_source: Source, routes: None) -> None:
    out, err = run("publish_event", "--source=shop", "--type=nobody.listens")
    event = Event.objects.get()
    assert out == f"{event.id}\n"
    assert err == "ignored, 0 deliveries\n"
    assert (event.payload, event.status, event.partition_key) == ({}, "ignored", "")


def test_publish_event_twice_with_one_external_id_prints_the_original_id(
    hmac_source: Source, routes: None
) -> None:
    args = ["--source=shop", f"--type={CANCELLED}", "--external-id=evt_1"]
    first, _ = run("publish_event", *args)
    again, err = run("publish_event", *args)
    assert again == first
    assert err == "duplicate: an event with this external id already exists\n"
    assert (Event.objects.count(), Delivery.objects.count()) == (1, 2)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        pytest.param(
            ["--source=nope", "--type=a.b"],
            "source 'nope' does not exist (see create_source)",
            id="unknown-source",
        ),
        pytest.param(
            ["--source=off", "--type=a.b"], "source 'off' is disabled", id="disabled-source"
        ),
        pytest.param(
            ["--source=shop", "--type=a.b", "--payload={guest: Ann}"],
            "--payload is not valid JSON: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)",
            id="bad-json",
        ),
        pytest.param(
            ["--source=shop", "--type=a.b", "--payload=" + "[" * 100_000],
            "--payload is not valid JSON: maximum recursion depth exceeded while decoding a "
            "JSON array from a unicode string",
            id="deep-json",
        ),
        pytest.param(
            ["--source=shop", "--type=a.b", "--payload=[1, 2]"], PAYLOAD_ERROR, id="array"
        ),
        pytest.param(["--source=shop", "--type=a.b", "--payload=null"], PAYLOAD_ERROR, id="null"),
        pytest.param(
            ["--source=shop", "--type=a.b", '--payload={"x": NaN}'],
            "payload contains NaN or Infinity, which JSON does not allow",
            id="nan",
        ),
        pytest.param(
            ["--source=shop", "--type=a.b", '--payload={"x": "\\u0000"}'],
            "payload contains a NUL character (\\u0000)",
            id="nul",
        ),
        pytest.param(["--source=shop", "--type=not a type"], TYPE_ERROR, id="bad-type"),
        pytest.param(
            ["--source=shop", "--type=a.b", "--external-id="],
            "id (external id) must be a string of 1-255 characters, without NUL or surrogates",
            id="empty-external-id",
        ),
        pytest.param(
            # what argv holds for bytes that are not UTF-8 (surrogateescape)
            ["--source=shop", "--type=a.b", "--external-id=caf\udce9"],
            "id (external id) must be a string of 1-255 characters, without NUL or surrogates",
            id="undecodable-external-id",
        ),
        pytest.param(
            ["--source=shop", "--type=a.b", "--schema-version=0"],
            "schema_version must be a whole number from 1 to 32767",
            id="schema-version",
        ),
    ],
)
def test_publish_event_refuses_bad_input(hmac_source: Source, args: list[str], error: str) -> None:
    Source.objects.create(slug="off", kind="api", enabled=False)
    before = stored()
    with pytest.raises(CommandError) as raised:
        run("publish_event", *args)
    assert str(raised.value) == error
    assert stored() == before


# --- create_source ----------------------------------------------------------------------------


def test_create_source_creates_it_and_prints_the_endpoint_url(db: None) -> None:
    out, err = run("create_source", "--slug=github", "--kind=hmac", "--secret=s1")
    assert out == "http://127.0.0.1:8000/hooks/github\n"
    assert err == "source github created (kind hmac, 1 secret(s))\n"
    source = Source.objects.get()
    assert (source.slug, source.kind, source.secrets, source.enabled) == (
        "github",
        "hmac",
        ["s1"],
        True,
    )


def test_create_source_twice_is_idempotent_and_updates_the_secrets(db: None) -> None:
    # given
    first, _ = run("create_source", "--slug=github", "--kind=hmac", "--secret=s1")
    # when a provisioning script runs again during a rotation
    again, err = run("create_source", "--slug=github", "--kind=hmac", "--secret=s2", "--secret=s1")
    # then
    assert again == first == "http://127.0.0.1:8000/hooks/github\n"
    assert err == "source github updated (kind hmac, 2 secret(s))\n"
    assert list(Source.objects.values_list("slug", "secrets")) == [("github", ["s2", "s1"])]


def test_create_source_again_without_secrets_keeps_the_existing_ones(db: None) -> None:
    run("create_source", "--slug=github", "--kind=hmac", "--secret=s1")
    run("create_source", "--slug=github", "--kind=hmac", "--description=GitHub org")
    source = Source.objects.get()
    assert (source.secrets, source.description) == (["s1"], "GitHub org")


def test_created_source_accepts_signed_webhooks(db: None) -> None:
    from events.webhooks.hmac import HEADER, sign

    run("create_source", "--slug=github", "--kind=hmac", "--secret=s1")
    body = json.dumps({"type": "a.b", "payload": {}}).encode()
    response = Client().post(
        "/hooks/github",
        data=body,
        content_type="application/json",
        headers={HEADER: sign("s1", body)},
    )
    assert response.status_code == 202


@pytest.mark.parametrize("kind", ["api", "internal"])
def test_create_source_of_a_non_webhook_kind_prints_the_api_url(db: None, kind: str) -> None:
    out, _ = run("create_source", "--slug=batch", f"--kind={kind}")
    assert out == "http://127.0.0.1:8000/api/events\n"
    assert Source.objects.get().secrets == []


def test_create_source_disabled(db: None) -> None:
    run("create_source", "--slug=github", "--kind=hmac", "--secret=s1", "--disabled")
    assert Source.objects.get().enabled is False


@pytest.mark.parametrize(
    ("args", "error"),
    [
        pytest.param(
            ["--slug=github", "--kind=smtp", "--secret=s"],
            "--kind 'smtp' is not one of: api, folder, github, hmac, internal, schedule, "
            "slack, standard_webhooks, stream, stripe",
            id="bad-kind",
        ),
        pytest.param(
            ["--slug=github", "--kind=hmac"],
            "a hmac source needs at least one --secret",
            id="hmac-without-secret",
        ),
        pytest.param(
            ["--slug=github", "--kind=hmac", "--secret= "],
            "--secret must not be empty",
            id="blank-secret",
        ),
        pytest.param(
            ["--slug=Git Hub", "--kind=api"],
            "--slug 'Git Hub' must be 1-64 lowercase letters, digits, dashes or underscores",
            id="slug-with-space",
        ),
        pytest.param(
            ["--slug=a/b", "--kind=api"],
            "--slug 'a/b' must be 1-64 lowercase letters, digits, dashes or underscores",
            id="slug-with-slash",
        ),
        pytest.param(
            ["--slug=", "--kind=api"],
            "--slug '' must be 1-64 lowercase letters, digits, dashes or underscores",
            id="empty-slug",
        ),
        pytest.param(
            ["--slug=" + "a" * 65, "--kind=api"],
            f"--slug {'a' * 65!r} must be 1-64 lowercase letters, digits, dashes or underscores",
            id="slug-too-long",
        ),
    ],
)
def test_create_source_refuses_bad_input(db: None, args: list[str], error: str) -> None:
    with pytest.raises(CommandError) as raised:
        run("create_source", *args)
    assert str(raised.value) == error
    assert Source.objects.count() == 0


# --- create_api_token -------------------------------------------------------------------------


def test_create_api_token_prints_a_token_that_authenticates(db: None) -> None:
    # given
    out, err = run("create_api_token", "ci", "--scope", "publish,read")
    token = out.strip()
    assert out == token + "\n"
    assert token.startswith("sy_")
    assert err == "Store it now: it cannot be shown again. It may publish and read (api).\n"
    record = ApiToken.objects.get()
    assert record.name == "ci"
    assert token not in record.digest  # only a digest is stored
    client = Client()
    # when
    published = client.post(
        "/api/events",
        data=json.dumps({"type": "a.b", "payload": {}}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    # then
    assert published.status_code == 202
    fetched = client.get(
        f"/api/events/{published.json()['id']}", headers={"Authorization": f"Bearer {token}"}
    )
    assert fetched.status_code == 200
    unknown = client.get(f"/api/events/{uuid.uuid4()}", headers={"Authorization": "Bearer x"})
    assert unknown.status_code == 401


def test_create_api_token_with_a_taken_name_fails(db: None) -> None:
    run("create_api_token", "ci")
    with pytest.raises(CommandError) as raised:
        run("create_api_token", "ci")
    assert str(raised.value) == "a token named 'ci' exists; pick another name"
    assert ApiToken.objects.count() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scope", "write"], "--scope 'write': name one or both of publish, read"),
        (["--scope", ","], "--scope ',': name one or both of publish, read"),
        (["--source", "nope"], "--source 'nope': no such source"),
        (
            ["--source", "gh"],
            "--source 'gh' is a github source; a token publishes into api sources only",
        ),
        (["--source", "api", "--all-sources"], "give --source or --all-sources, not both"),
    ],
)
def test_create_api_token_refuses_bad_scopes_and_sources(
    db: None, args: list[str], message: str
) -> None:
    Source.objects.create(slug="gh", kind="github")
    with pytest.raises(CommandError) as raised:
        run("create_api_token", "ci", *args)
    assert str(raised.value) == message
    assert ApiToken.objects.count() == 0


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_create_api_token_refuses_a_bad_name(db: None, name: str) -> None:
    with pytest.raises(CommandError) as raised:
        run("create_api_token", name)
    assert str(raised.value) == "NAME must be 1-100 characters"
    assert ApiToken.objects.count() == 0
