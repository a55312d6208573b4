"""GitHub deliveries through POST /hooks/<slug>: every real payload, form encoding, headers."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.test import Client

from events.models import Event, Source
from events.webhooks.github import sign

from .conftest import GITHUB_FIXTURES, NEW_SECRET, OLD_SECRET, assert_rejected, post, stored

pytestmark = pytest.mark.django_db

PAYLOADS = sorted(GITHUB_FIXTURES.rglob("*.json"))
# Files whose name does not give the payload's action (it was named for a variant instead).
ACTION_NOT_IN_NAME = {
    "deployment/gh-pages.payload.json": "created",
    "deployment/payload.json": "created",
    "deployment/with-installation.payload.json": "created",
    "deployment_status/gh-pages.payload.json": "created",
    "deployment_status/payload.json": "created",
    "deployment_status/with-installation.payload.json": "created",
    "repository_dispatch/payload.json": "on-demand-test",
    "sponsorship/downgraded.payload.json": "pending_tier_change",
}


def expected_type(path: Path) -> str:
    """github.<folder>.<action from the file name>, e.g. issues/opened.payload.json."""
    relative = path.relative_to(GITHUB_FIXTURES).as_posix()
    first = path.name.split(".")[0]
    action = ACTION_NOT_IN_NAME.get(relative)
    if action is None and first != "payload" and not first.startswith("with-") and first != "1":
        action = first.replace("-", "_")
    return ".".join(part for part in ("github", path.parent.name, action) if part)


def github_headers(body: bytes, event: str, delivery: str, secret: str = NEW_SECRET) -> dict:
    return {
        "X-Hub-Signature-256": sign(secret, body),
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
    }


def test_the_fixture_walk_sees_every_payload() -> None:
    assert len(PAYLOADS) == 273
    assert len({p.parent.name for p in PAYLOADS}) == 60  # folders, one per event


@pytest.mark.parametrize("path", PAYLOADS, ids=lambda p: p.relative_to(GITHUB_FIXTURES).as_posix())
def test_every_real_github_payload_is_accepted_typed_and_stored(
    client: Client, github_source: Source, path: Path
) -> None:
    # given a real payload, signed as GitHub signs it
    body = path.read_bytes()
    delivery = str(uuid.uuid4())
    # when
    response = post(client, "gh", body, github_headers(body, path.parent.name, delivery))
    # then
    assert response.status_code == 202, response.content
    event = Event.objects.get()
    assert response.json()["id"] == str(event.id)
    payload = json.loads(body)
    repository = payload.get("repository")
    assert (event.type, event.external_id, event.source_id) == (
        expected_type(path),
        delivery,
        github_source.id,
    )
    assert event.partition_key == (repository["full_name"] if repository else "")
    assert event.payload == payload


def test_form_encoded_delivery_is_accepted_like_json(client: Client, github_source: Source) -> None:
    document = json.loads((GITHUB_FIXTURES / "issues" / "opened.payload.json").read_bytes())
    body = urlencode({"payload": json.dumps(document)}).encode()
    response = post(
        client,
        "gh",
        body,
        github_headers(body, "issues", "d-1"),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 202, response.content
    event = Event.objects.get()
    assert (event.type, event.external_id, event.payload) == (
        "github.issues.opened",
        "d-1",
        document,
    )
    assert event.partition_key == document["repository"]["full_name"]


def test_ping_is_accepted_without_an_action(client: Client, github_source: Source) -> None:
    body = b'{"zen": "Keep it logically awesome.", "hook_id": 1}'
    response = post(client, "gh", body, github_headers(body, "ping", "d-ping"))
    assert response.status_code == 202
    assert Event.objects.get().type == "github.ping"


def test_old_secret_still_works_during_a_rotation(client: Client, github_source: Source) -> None:
    body = b'{"zen": "x"}'
    response = post(client, "gh", body, github_headers(body, "ping", "d-2", secret=OLD_SECRET))
    assert response.status_code == 202


def test_redelivery_with_the_same_delivery_id_is_a_duplicate(
    client: Client, github_source: Source
) -> None:
    # GitHub signs no timestamp; a replay or manual redelivery keeps X-GitHub-Delivery.
    body = b'{"action": "opened", "number": 1}'
    first = post(client, "gh", body, github_headers(body, "issues", "d-3"))
    again = post(client, "gh", body, github_headers(body, "issues", "d-3"))
    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json() == {"id": first.json()["id"], "duplicate": True}
    assert Event.objects.count() == 1


def test_re_serialised_body_fails_verification(client: Client, github_source: Source) -> None:
    # given a delivery signed over GitHub's bytes, then parsed and dumped again by a proxy
    original = (GITHUB_FIXTURES / "ping" / "payload.json").read_bytes()
    reserialised = json.dumps(json.loads(original)).encode()
    assert reserialised != original
    before = stored()
    response = post(client, "gh", reserialised, github_headers(original, "ping", "d-4"))
    assert_rejected(response, 401, "signature does not match")
    assert stored() == before


@pytest.mark.parametrize(
    ("header", "status", "error"),
    [
        ("X-GitHub-Event", 400, "missing X-GitHub-Event header"),
        ("X-GitHub-Delivery", 400, "missing X-GitHub-Delivery header"),
        ("X-Hub-Signature-256", 401, "missing X-Hub-Signature-256 header"),
    ],
)
def test_missing_header_is_refused(
    client: Client, github_source: Source, header: str, status: int, error: str
) -> None:
    body = b'{"zen": "x"}'
    headers = github_headers(body, "ping", "d-5")
    del headers[header]
    before = stored()
    assert_rejected(post(client, "gh", body, headers), status, error)
    assert stored() == before


def test_unknown_content_type_is_415(client: Client, github_source: Source) -> None:
    body = b'{"zen": "x"}'
    before = stored()
    response = post(client, "gh", body, github_headers(body, "ping", "d-6"), "text/plain")
    assert_rejected(
        response, 415, "content type must be application/json or application/x-www-form-urlencoded"
    )
    assert stored() == before


def test_form_without_payload_field_is_400(client: Client, github_source: Source) -> None:
    body = b"data=%7B%7D"
    before = stored()
    response = post(
        client,
        "gh",
        body,
        github_headers(body, "ping", "d-7"),
        "application/x-www-form-urlencoded",
    )
    assert_rejected(response, 400, "form body has no 'payload' field")
    assert stored() == before


def test_the_fixture_walk_covers_every_github_payload() -> None:
    # An empty or moved fixture folder must fail, not quietly parametrize nothing.
    assert len(PAYLOADS) == 273
    assert len({p.parent.name for p in PAYLOADS}) == 60
