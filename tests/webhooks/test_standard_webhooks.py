"""Standard Webhooks deliveries through POST /hooks/<slug>, signed by the standardwebhooks
library itself."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from django.test import Client
from standardwebhooks import Webhook

from events.models import Event, Source
from events.webhooks.standard_webhooks import sign

from .conftest import NOW, SW_NEW, SW_OLD, assert_rejected, post, stored

pytestmark = pytest.mark.django_db

BODY = json.dumps({"type": "invoice.paid", "data": {"id": "in_1"}}).encode()


def library_headers(
    body: bytes = BODY, msg_id: str = "msg_1", secret: str = SW_NEW, timestamp: int = NOW
) -> dict[str, str]:
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": Webhook(secret).sign(msg_id, when, body.decode()),
    }


def test_message_signed_by_the_standardwebhooks_library_is_accepted(
    client: Client, sw_source: Source, clock: Callable[[float], None]
) -> None:
    response = post(client, "svix", BODY, library_headers())
    assert response.status_code == 202, response.content
    event = Event.objects.get()
    assert (event.type, event.external_id, event.partition_key, event.payload) == (
        "standard_webhooks.invoice.paid",
        "msg_1",
        "",
        json.loads(BODY),
    )


def test_our_signature_is_the_one_the_library_makes() -> None:
    assert sign(SW_NEW, "msg_1", NOW, BODY) == library_headers()["webhook-signature"]


def test_type_prefix_setting_names_the_sender(
    client: Client, sw_source: Source, clock: Callable[[float], None]
) -> None:
    Source.objects.filter(id=sw_source.id).update(settings={"type_prefix": "clerk"})
    assert post(client, "svix", BODY, library_headers()).status_code == 202
    assert Event.objects.get().type == "clerk.invoice.paid"


def test_payload_without_type_gets_the_prefix_alone(
    client: Client, sw_source: Source, clock: Callable[[float], None]
) -> None:
    body = b'{"data": 1}'
    assert post(client, "svix", body, library_headers(body)).status_code == 202
    assert Event.objects.get().type == "standard_webhooks"


def test_several_signatures_pass_if_any_matches_and_other_versions_are_skipped(
    client: Client, sw_source: Source, clock: Callable[[float], None]
) -> None:
    headers = library_headers(secret=SW_OLD)
    headers["webhook-signature"] = (
        "v1a,bm90IGEgc2lnbmF0dXJl v1,AAAA v1,not-base64! " + headers["webhook-signature"]
    )
    assert post(client, "svix", BODY, headers).status_code == 202


def test_replay_inside_the_window_is_a_duplicate_and_outside_is_refused(
    client: Client, sw_source: Source, clock: Callable[[float], None]
) -> None:
    # given a message accepted once
    headers = library_headers()
    first = post(client, "svix", BODY, headers)
    assert first.status_code == 202
    # when the same signed request is replayed 300 s later, then it is the same event
    clock(NOW + 300)
    again = post(client, "svix", BODY, headers)
    assert (again.status_code, again.json()) == (200, {"id": first.json()["id"], "duplicate": True})
    # when it is replayed 301 s later, then it is refused
    clock(NOW + 301)
    before = stored()
    late = post(client, "svix", BODY, headers)
    assert_rejected(late, 401, "webhook-timestamp is more than 300 s from our clock")
    assert stored() == before


def test_re_serialised_body_fails_verification(
    client: Client, sw_source: Source, clock: Callable[[float], None]
) -> None:
    reserialised = json.dumps(json.loads(BODY), indent=1).encode()
    before = stored()
    response = post(client, "svix", reserialised, library_headers(BODY))
    assert_rejected(response, 401, "signature does not match")
    assert stored() == before


def test_source_whose_secret_is_not_whsec_base64_refuses_and_says_why_in_the_log(
    client: Client, db: None, clock: Callable[[float], None], caplog: pytest.LogCaptureFixture
) -> None:
    Source.objects.create(slug="svix", kind="standard_webhooks", secrets=["plain-secret"])
    before = stored()
    assert_rejected(post(client, "svix", BODY, library_headers()), 401, "signature does not match")
    assert stored() == before
    assert (
        "standard_webhooks source has no valid secret among its first two: "
        "a Standard Webhooks secret is whsec_ followed by a base64 key"
    ) in caplog.text
    assert "plain-secret" not in caplog.text
