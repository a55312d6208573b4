"""Helpers for the ingestion tests: what is stored, how a rejection must look, bad bodies."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client

from events.models import Delivery, Event, Source
from events.webhooks.hmac import HEADER, sign

# A test client's answer: an HttpResponse with .json() added by the client.
Response = Any

# The event type two test handlers subscribe to (tests/testapp/agents.py).
CANCELLED = "scenario.reservation.cancelled"
TYPE_ERROR = (
    "type must be 1-200 characters of letters, digits and . _ : / - "
    "(starting with a letter or digit)"
)
ID_ERROR = "id (external id) must be a string of 1-255 characters, without NUL or surrogates"
PAYLOAD_ERROR = "payload must be a JSON object"
MISMATCH = "signature does not match"
NUL_ERROR = "payload contains a NUL character (\\u0000)"
SURROGATE_ERROR = "payload contains a lone surrogate (\\ud800-\\udfff), which is not valid Unicode"


def stored() -> tuple[int, int, int]:
    """(events, deliveries, sources): compared before and after a rejected request."""
    return Event.objects.count(), Delivery.objects.count(), Source.objects.count()


def assert_rejected(response: Response, status: int, error: str | re.Pattern[str]) -> None:
    """A JSON answer ``{"error": ...}`` with this status; ``error`` exact, or a pattern."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    if isinstance(error, str):
        assert body["error"] == error
    else:
        assert error.search(body["error"]), body["error"]


def envelope(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def post_hook(
    client: Client,
    body: bytes,
    *,
    slug: str = "shop",
    secret: str = "new-secret",
    signature: str | None = None,
    content_type: str = "application/json",
    **extra: Any,
) -> Response:
    headers = {HEADER: sign(secret, body) if signature is None else signature}
    return client.post(
        f"/hooks/{slug}", data=body, content_type=content_type, headers=headers, **extra
    )


@pytest.fixture
def client() -> Client:
    # enforce_csrf_checks: a real sender has no CSRF token; the endpoint must not need one.
    return Client(enforce_csrf_checks=True)


def hook_body(external_id: str = "evt_1", **payload: Any) -> bytes:
    return envelope(
        type=CANCELLED, id=external_id, partition_key="r1", payload=payload or {"guest": "Ann"}
    )


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


# Bodies both /hooks/<slug> (signed correctly) and /api/events must refuse with a 400.
BAD_BODIES = [
    pytest.param(
        b'{"type": "a.b", "payload": {}', re.compile(r"^malformed JSON: Expecting"), id="truncated"
    ),
    pytest.param(b"", re.compile(r"^malformed JSON: Expecting value"), id="empty"),
    pytest.param(b"{'type': 'a.b'}", re.compile(r"^malformed JSON: Expecting"), id="single-quotes"),
    pytest.param(b"[]", "body must be a JSON object", id="array"),
    pytest.param(b'"a.b"', "body must be a JSON object", id="string"),
    pytest.param(b"null", "body must be a JSON object", id="null"),
    pytest.param(envelope(payload={}), "missing field(s): type", id="missing-type"),
    pytest.param(envelope(type="a.b"), "missing field(s): payload", id="missing-payload"),
    pytest.param(envelope(), "missing field(s): type, payload", id="missing-both"),
    pytest.param(
        envelope(type="a.b", payload={}, extra=1, Type="x"),
        "unknown field(s): Type, extra",
        id="unknown-fields",
    ),
    pytest.param(envelope(type="order created", payload={}), TYPE_ERROR, id="type-space"),
    pytest.param(envelope(type="", payload={}), TYPE_ERROR, id="type-empty"),
    pytest.param(envelope(type=".order", payload={}), TYPE_ERROR, id="type-leading-dot"),
    pytest.param(envelope(type="order.created\n", payload={}), TYPE_ERROR, id="type-newline"),
    pytest.param(envelope(type="ordér.created", payload={}), TYPE_ERROR, id="type-non-ascii"),
    pytest.param(envelope(type="a" * 201, payload={}), TYPE_ERROR, id="type-too-long"),
    pytest.param(envelope(type=5, payload={}), TYPE_ERROR, id="type-number"),
    pytest.param(envelope(type=["a.b"], payload={}), TYPE_ERROR, id="type-list"),
    pytest.param(envelope(type="a.b", payload=[]), PAYLOAD_ERROR, id="payload-list"),
    pytest.param(envelope(type="a.b", payload="x"), PAYLOAD_ERROR, id="payload-string"),
    pytest.param(envelope(type="a.b", payload=None), PAYLOAD_ERROR, id="payload-null"),
    pytest.param(
        b'{"type": "a.b", "payload": {"x": NaN}}',
        "malformed JSON: NaN is not valid JSON",
        id="nan",
    ),
    pytest.param(
        b'{"type": "a.b", "payload": {"x": -Infinity}}',
        "malformed JSON: -Infinity is not valid JSON",
        id="minus-infinity",
    ),
    pytest.param(
        b'{"type": "a.b", "payload": {"x": 1e400}}',
        "payload contains NaN or Infinity, which JSON does not allow",
        id="float-overflow",
    ),
    pytest.param(
        b'{"type": "a.b", "payload": {"x": ' + b"7" * 5000 + b"}}",
        re.compile(r"^malformed JSON: Exceeds the limit \(4300 digits\)"),
        id="5000-digit-integer",
    ),
    pytest.param(
        b'{"type": "a.b", "payload": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "JSON is nested too deeply",
        id="100k-deep",
    ),
    pytest.param(
        envelope(type="a.b", payload=_nested(100)),
        "payload is nested deeper than 64 levels",
        id="100-deep",
    ),
    pytest.param(envelope(type="a.b", payload={"note": "a\u0000b"}), NUL_ERROR, id="nul-value"),
    pytest.param(envelope(type="a.b", payload={"a\u0000": 1}), NUL_ERROR, id="nul-key"),
    pytest.param(envelope(type="a.b", payload={}, id="x\u0000"), NUL_ERROR, id="nul-in-id"),
    pytest.param(
        b'{"type": "a.b", "payload": {"x": "\\ud800"}}', SURROGATE_ERROR, id="lone-surrogate"
    ),
    pytest.param(
        b'{"type": "a.b", "payload": {"\\udfff": 1}}', SURROGATE_ERROR, id="lone-surrogate-key"
    ),
    pytest.param(
        b'{"type": "a.b", "id": "\\ud800", "payload": {}}',
        SURROGATE_ERROR,
        id="lone-surrogate-in-id",
    ),
    pytest.param(
        b'{"type": "a.b", "payload": {"x": "\xff\xfe"}}', "body is not valid UTF-8", id="bad-utf8"
    ),
    pytest.param(
        b'\xef\xbb\xbf{"type": "a.b", "payload": {}}',
        re.compile(r"^malformed JSON: Unexpected UTF-8 BOM"),
        id="byte-order-mark",
    ),
    pytest.param(envelope(type="a.b", payload={}, id=7), ID_ERROR, id="id-number"),
    pytest.param(envelope(type="a.b", payload={}, id=""), ID_ERROR, id="id-empty"),
    pytest.param(envelope(type="a.b", payload={}, id="x" * 256), ID_ERROR, id="id-too-long"),
    pytest.param(
        envelope(type="a.b", payload={}, partition_key=3),
        "partition_key must be a string of at most 255 characters, without NUL or surrogates",
        id="partition-key-number",
    ),
    pytest.param(
        envelope(type="a.b", payload={}, schema_version=0),
        "schema_version must be a whole number from 1 to 32767",
        id="schema-version-zero",
    ),
    pytest.param(
        envelope(type="a.b", payload={}, schema_version=True),
        "schema_version must be a whole number from 1 to 32767",
        id="schema-version-bool",
    ),
]
