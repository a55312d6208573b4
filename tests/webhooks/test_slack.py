"""Slack requests through POST /hooks/<slug>, signed by slack_sdk's SignatureVerifier."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from slack_sdk.signature import SignatureVerifier

from events.models import Delivery, Event, Route, Source
from events.webhooks.slack import sign

from .conftest import NEW_SECRET, NOW, VECTORS, assert_rejected, post, stored

pytestmark = pytest.mark.django_db

FORM = "application/x-www-form-urlencoded"


def slack_headers(body: bytes, timestamp: int = NOW, secret: str = NEW_SECRET) -> dict[str, str]:
    signature = SignatureVerifier(secret).generate_signature(timestamp=str(timestamp), body=body)
    assert signature is not None
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": signature}


def event_callback(event_id: str = "Ev1", **event: Any) -> bytes:
    message = {"type": "message", "channel": "C1", "user": "U1", "text": "hi", **event}
    return json.dumps(
        {"type": "event_callback", "team_id": "T1", "event_id": event_id, "event": message}
    ).encode()


@pytest.fixture
def message_route(db: None) -> Route:
    return Route.objects.create(name="slack-messages", event_type="slack.*", handler="test.notify")


def test_our_signature_is_the_one_slack_sdk_makes() -> None:
    body = event_callback()
    assert sign(NEW_SECRET, NOW, body) == slack_headers(body)["X-Slack-Signature"]


def test_url_verification_is_answered_with_the_challenge_when_signed(
    client: Client, slack_source: Source, clock: Callable[[float], None]
) -> None:
    body = b'{"token": "t", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}'  # noqa: E501
    before = stored()
    response = post(client, "chat", body, slack_headers(body))
    assert response.status_code == 200
    assert response.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    assert stored() == before


def test_url_verification_with_a_bad_signature_gets_no_challenge(
    client: Client, slack_source: Source, clock: Callable[[float], None]
) -> None:
    body = b'{"challenge": "abc", "type": "url_verification"}'
    headers = slack_headers(body, secret="not-ours")
    assert_rejected(post(client, "chat", body, headers), 401, "signature does not match")


def test_event_callback_is_stored_typed_by_its_event(
    client: Client, slack_source: Source, message_route: Route, clock: Callable[[float], None]
) -> None:
    body = event_callback(type="app_mention")
    response = post(client, "chat", body, slack_headers(body))
    assert response.status_code == 202, response.content
    event = Event.objects.get()
    assert (event.type, event.external_id, event.partition_key, event.status) == (
        "slack.app_mention",
        "Ev1",
        "C1",
        "received",
    )
    assert Delivery.objects.get().handler == "test.notify"


def test_retry_with_x_slack_retry_num_is_a_duplicate(
    client: Client, slack_source: Source, message_route: Route, clock: Callable[[float], None]
) -> None:
    body = event_callback("Ev2")
    first = post(client, "chat", body, slack_headers(body))
    clock(NOW + 61)
    retry_headers = {
        **slack_headers(body, timestamp=NOW + 61),
        "X-Slack-Retry-Num": "1",
        "X-Slack-Retry-Reason": "http_timeout",
    }
    again = post(client, "chat", body, retry_headers)
    assert first.status_code == 202
    assert (again.status_code, again.json()) == (200, {"id": first.json()["id"], "duplicate": True})
    assert (Event.objects.count(), Delivery.objects.count()) == (1, 1)


@pytest.mark.parametrize(
    "event",
    [
        pytest.param({"bot_id": "B1", "subtype": "bot_message"}, id="bot-message"),
        pytest.param({"bot_id": "B1"}, id="bot-id"),
        pytest.param({"user": "U0BOT"}, id="configured-bot-user"),
        pytest.param(
            {"subtype": "message_changed", "message": {"user": "U0BOT", "text": "edited"}},
            id="edit-by-our-bot",
        ),
    ],
)
def test_messages_from_a_bot_are_stored_as_ignored(
    client: Client,
    slack_source: Source,
    message_route: Route,
    clock: Callable[[float], None],
    event: dict[str, Any],
) -> None:
    body = event_callback(**event)
    response = post(client, "chat", body, slack_headers(body))
    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    assert response.json()["deliveries"] == 0
    assert Event.objects.get().status == "ignored"
    assert Delivery.objects.count() == 0


def test_slash_command_vector_is_accepted_as_a_form(
    client: Client, slack_source: Source, clock: Callable[[float], None]
) -> None:
    # given Slack's published slash command request, on a source with its secret
    vector = VECTORS["slack"]
    Source.objects.filter(id=slack_source.id).update(secrets=[vector["secret"]])
    clock(vector["now"])
    # when
    response = post(client, "chat", vector["body"].encode(), vector["headers"], FORM)
    # then
    assert response.status_code == 202, response.content
    event = Event.objects.get()
    assert (event.type, event.external_id, event.partition_key) == (
        "slack.slash_command",
        "398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c",
        "G8PSS9T3V",
    )
    assert (event.payload["command"], event.payload["text"]) == ("/webhook-collect", "")


def test_interactivity_payload_is_typed_by_its_type(
    client: Client, slack_source: Source, clock: Callable[[float], None]
) -> None:
    interaction = {"type": "block_actions", "trigger_id": "tr1", "channel": {"id": "C9"}}
    body = urlencode({"payload": json.dumps(interaction)}).encode()
    response = post(client, "chat", body, slack_headers(body), FORM)
    assert response.status_code == 202, response.content
    event = Event.objects.get()
    assert (event.type, event.external_id, event.partition_key, event.payload) == (
        "slack.block_actions",
        "tr1",
        "C9",
        interaction,
    )


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"text=hello", "form body is neither a slash command nor an interactivity payload"),
        (b"command=%2Fa&command=%2Fb", "form field 'command' is repeated"),
        (b"command=%ff", "form body is not valid URL-encoded UTF-8"),
        (b"payload=%7B%7D", "interactivity payload has no type"),
    ],
)
def test_bad_form_is_400(
    client: Client, slack_source: Source, clock: Callable[[float], None], body: bytes, error: str
) -> None:
    before = stored()
    assert_rejected(post(client, "chat", body, slack_headers(body), FORM), 400, error)
    assert stored() == before
