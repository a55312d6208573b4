"""Replays of signed requests that carry no id of their own are stored once, over HTTP to the
live server: Slack's by timestamp and body digest inside its 300 s window; the hmac kind's by
a signed timestamp where the source names one, else by body digest within its dedupe window."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from events import replays
from events.models import Event, Source
from events.webhooks import hmac as hmac_kind
from events.webhooks import slack

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "replay-test-secret"


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def slack_post(url: str, body: bytes, content_type: str, timestamp: int) -> int:
    headers = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": slack.sign(SECRET, timestamp, body),
    }
    return post(url, body, headers)[0]


RATE_LIMITED = json.dumps(
    {"token": "x", "type": "app_rate_limited", "team_id": "T1", "minute_rate_limited": 1}
).encode()
VIEW_CLOSED = urlencode(
    {"payload": json.dumps({"type": "view_closed", "team": {"id": "T1"}, "view": {"id": "V1"}})}
).encode()
COMMAND = urlencode({"command": "/deploy", "text": "prod", "team_id": "T1"}).encode()


@pytest.mark.parametrize(
    ("body", "content_type", "event_type"),
    [
        pytest.param(RATE_LIMITED, "application/json", "slack.app_rate_limited", id="events-api"),
        pytest.param(
            VIEW_CLOSED, "application/x-www-form-urlencoded", "slack.view_closed", id="interaction"
        ),
        pytest.param(
            COMMAND, "application/x-www-form-urlencoded", "slack.slash_command", id="command"
        ),
    ],
)
def test_a_slack_request_without_an_id_replayed_in_its_window_is_stored_once(
    live_server: Any, body: bytes, content_type: str, event_type: str
) -> None:
    Source.objects.create(slug="slack", kind="slack", secrets=[SECRET])
    url = f"{live_server.url}/hooks/slack"
    signed_at = int(time.time())

    answers = [slack_post(url, body, content_type, signed_at) for _ in range(3)]
    resent = slack_post(url, body, content_type, signed_at + 1)  # signed again: a new request

    assert answers == [202, 200, 200]
    assert resent == 202
    assert list(Event.objects.values_list("type", flat=True)) == [event_type] * 2


def hmac_post(
    url: str, document: dict[str, Any], *, timestamp: int | None = None, signed_at: Any = None
) -> tuple[int, dict[str, Any]]:
    body = json.dumps(document).encode()
    headers = {
        "Content-Type": "application/json",
        hmac_kind.HEADER: hmac_kind.sign(SECRET, body, signed_at if signed_at else timestamp),
    }
    if timestamp is not None:
        headers["X-Timestamp"] = str(timestamp)
    return post(url, body, headers)


def test_an_hmac_request_with_a_signed_timestamp_replayed_in_its_window_is_stored_once(
    live_server: Any,
) -> None:
    Source.objects.create(
        slug="shop",
        kind="hmac",
        secrets=[SECRET],
        settings={"timestamp_header": "X-Timestamp", "tolerance_seconds": 120},
    )
    url = f"{live_server.url}/hooks/shop"
    now = int(time.time())
    document = {"type": "order.paid", "payload": {"order": 7}}

    replays = [hmac_post(url, document, timestamp=now)[0] for _ in range(3)]
    stale = hmac_post(url, document, timestamp=now - 121)
    moved = hmac_post(url, document, timestamp=now + 5, signed_at=now)  # header changed only
    unsigned_time = post(
        url,
        json.dumps(document).encode(),
        {"Content-Type": "application/json", "X-Timestamp": str(now),
         hmac_kind.HEADER: hmac_kind.sign(SECRET, json.dumps(document).encode())},
    )  # fmt: skip

    assert replays == [202, 200, 200]
    assert stale == (401, {"error": "X-Timestamp is more than 120 s from our clock"})
    assert moved == (401, {"error": "signature does not match"})
    assert unsigned_time == (401, {"error": "signature does not match"})
    assert Event.objects.count() == 1


def test_an_hmac_request_without_an_id_is_stored_once_within_the_dedupe_window(
    live_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    Source.objects.create(
        slug="shop", kind="hmac", secrets=[SECRET], settings={"dedupe_window_seconds": 600}
    )
    url = f"{live_server.url}/hooks/shop"
    document = {"type": "order.paid", "payload": {"order": 7}}

    first, again = hmac_post(url, document), hmac_post(url, document)
    other = hmac_post(url, {"type": "order.paid", "payload": {"order": 8}})
    # 601 s pass: the first one is older than the window, and the same body is a new event
    Event.objects.filter(pk=first[1]["id"]).update(
        received_at=timezone.now() - timedelta(seconds=601)
    )
    monkeypatch.setattr(replays, "clock", lambda: time.time() + 601)
    later = hmac_post(url, document)

    assert [first[0], again[0], other[0], later[0]] == [202, 200, 202, 202]
    assert again[1] == {"id": first[1]["id"], "duplicate": True}
    assert Event.objects.count() == 3
