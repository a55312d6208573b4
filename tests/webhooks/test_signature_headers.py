"""Every kind refuses missing, empty, repeated and garbage signature headers and malformed
timestamps with a 401 or 400, and bad JSON under a good signature with a 400; none stores
anything."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client
from django.test.client import FakePayload

from events.models import Source
from events.webhooks import github, slack, standard_webhooks, stripe

from ..ingest.conftest import BAD_BODIES
from .conftest import NEW_SECRET, NOW, STRIPE_NEW, SW_NEW, Response, assert_rejected, post, stored

pytestmark = pytest.mark.django_db

Sign = Callable[[bytes], dict[str, str]]

SIGNERS: dict[str, tuple[str, Sign]] = {
    "github": (
        "gh",
        lambda body: {
            "X-Hub-Signature-256": github.sign(NEW_SECRET, body),
            "X-GitHub-Event": "ping",
            "X-GitHub-Delivery": "d-1",
        },
    ),
    "stripe": ("pay", lambda body: {"Stripe-Signature": stripe.sign(STRIPE_NEW, body, NOW)}),
    "slack": (
        "chat",
        lambda body: {
            "X-Slack-Request-Timestamp": str(NOW),
            "X-Slack-Signature": slack.sign(NEW_SECRET, NOW, body),
        },
    ),
    "standard_webhooks": (
        "svix",
        lambda body: {
            "webhook-id": "msg_1",
            "webhook-timestamp": str(NOW),
            "webhook-signature": standard_webhooks.sign(SW_NEW, "msg_1", NOW, body),
        },
    ),
}
SIGNATURE_HEADERS = {
    "github": "X-Hub-Signature-256",
    "stripe": "Stripe-Signature",
    "slack": "X-Slack-Signature",
    "standard_webhooks": "webhook-signature",
}
TIMESTAMP_HEADERS = {"slack": "X-Slack-Request-Timestamp", "standard_webhooks": "webhook-timestamp"}
BODY = b'{"id": "evt_1", "type": "invoice.paid", "event_id": "Ev1"}'
KINDS = sorted(SIGNERS)


@pytest.fixture
def sources(
    github_source: Source,
    stripe_source: Source,
    slack_source: Source,
    sw_source: Source,
    clock: Callable[[float], None],
) -> None:
    """One source of every kind, and the clock pinned to NOW."""


def send(client: Client, kind: str, body: bytes, **changes: str | None) -> Response:
    slug, make = SIGNERS[kind]
    headers = make(body)
    for name, value in changes.items():
        header = name.replace("_", "-")
        key = next((k for k in headers if k.lower() == header.lower()), header)
        if value is None:
            del headers[key]
        else:
            headers[key] = value
    return post(client, slug, body, headers)


def test_the_signers_are_accepted(client: Client, sources: None) -> None:
    # The control for every refusal below: unchanged, each kind's request gets in.
    for kind in KINDS:
        assert send(client, kind, BODY).status_code == 202, kind


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("value", [None, "", "   "], ids=["missing", "empty", "blank"])
def test_missing_or_empty_signature_is_401(
    client: Client, sources: None, kind: str, value: str | None
) -> None:
    header = SIGNATURE_HEADERS[kind]
    before = stored()
    response = send(client, kind, BODY, **{header: value})
    assert_rejected(response, 401, f"missing {header} header")
    assert stored() == before


MALFORMED = (400, "malformed Stripe-Signature header")
NO_T = (400, "Stripe-Signature must carry exactly one t=")
# What Stripe answers for each garbage value; every other kind: 401 "signature does not match".
GARBAGE = {
    "garbage": MALFORMED,
    "sha256=": MALFORMED,
    "v0=zz": NO_T,
    "v1,": MALFORMED,
    "t=1": (401, "Stripe-Signature t= is more than 300 s from our clock"),
    "é" * 10: MALFORMED,
    "\x7f" * 3: MALFORMED,
    "=" * 5: MALFORMED,
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("value", sorted(GARBAGE))
def test_garbage_signature_is_401_or_400(
    client: Client, sources: None, kind: str, value: str
) -> None:
    before = stored()
    response = send(client, kind, BODY, **{SIGNATURE_HEADERS[kind]: value})
    status, error = GARBAGE[value] if kind == "stripe" else (401, "signature does not match")
    assert_rejected(response, status, error)
    assert stored() == before


@pytest.mark.parametrize("kind", sorted(TIMESTAMP_HEADERS))
@pytest.mark.parametrize(
    "value",
    [str(NOW * 1000), f"{NOW}.5", "-1", "1e9", "NaN", f" {NOW}x", "0x6553f100"],
    ids=["milliseconds", "fraction", "negative", "exponent", "nan", "trailing", "hex"],
)
def test_malformed_timestamp_is_400(client: Client, sources: None, kind: str, value: str) -> None:
    header = TIMESTAMP_HEADERS[kind]
    before = stored()
    response = send(client, kind, BODY, **{header: value})
    assert_rejected(response, 400, f"{header} must be a Unix time in whole seconds")
    assert stored() == before


def test_stripe_millisecond_timestamp_is_400(client: Client, sources: None) -> None:
    signature = stripe.sign(STRIPE_NEW, BODY, NOW * 1000)
    before = stored()
    response = send(client, "stripe", BODY, Stripe_Signature=signature)
    assert_rejected(response, 400, "Stripe-Signature t= must be a Unix time in whole seconds")
    assert stored() == before


@pytest.mark.parametrize("kind", sorted(TIMESTAMP_HEADERS))
def test_missing_timestamp_is_401(client: Client, sources: None, kind: str) -> None:
    header = TIMESTAMP_HEADERS[kind]
    before = stored()
    assert_rejected(send(client, kind, BODY, **{header: None}), 401, f"missing {header} header")
    assert stored() == before


@pytest.mark.parametrize(
    ("header", "error"),
    [
        ("t=1,t=2,v1=ab", "Stripe-Signature must carry exactly one t="),
        ("v1=ab", "Stripe-Signature must carry exactly one t="),
        ("t=1,,v1=ab", "malformed Stripe-Signature header"),
        ("t=,v1=ab", "malformed Stripe-Signature header"),
    ],
)
def test_malformed_stripe_header_is_400(
    client: Client, sources: None, header: str, error: str
) -> None:
    before = stored()
    assert_rejected(send(client, "stripe", BODY, Stripe_Signature=header), 400, error)
    assert stored() == before


def post_asgi(slug: str, body: bytes, headers: list[tuple[str, str]]) -> Response:
    """POST through Django's ASGI handler with exactly these header lines, repeats included."""
    scope: dict[str, Any] = {
        "method": "POST",
        "path": f"/hooks/{slug}",
        "query_string": "",
        "server": ("127.0.0.1", "80"),
        "scheme": "http",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *((name.lower().encode(), value.encode("latin-1")) for name, value in headers),
        ],
        "_body_file": FakePayload(body),
    }
    response: Response = async_to_sync(AsyncClient().request)(**scope)
    return response


@pytest.mark.parametrize("kind", KINDS)
def test_repeated_signature_header_is_refused(client: Client, sources: None, kind: str) -> None:
    # given the right signature sent twice (a proxy or a forger adding a second header line)
    slug, make = SIGNERS[kind]
    headers = list(make(BODY).items())
    signature_header = next(h for h in headers if h[0] == SIGNATURE_HEADERS[kind])
    before = stored()
    # when
    response = post_asgi(slug, BODY, [*headers, signature_header])
    # then the joined value matches nothing
    assert response.status_code in (400, 401), response.content
    assert stored() == before


@pytest.mark.parametrize("kind", sorted(TIMESTAMP_HEADERS))
def test_repeated_timestamp_header_is_400(client: Client, sources: None, kind: str) -> None:
    slug, make = SIGNERS[kind]
    headers = list(make(BODY).items())
    timestamp_header = next(h for h in headers if h[0] == TIMESTAMP_HEADERS[kind])
    before = stored()
    response = post_asgi(slug, BODY, [*headers, timestamp_header])
    assert_rejected(response, 400, f"{timestamp_header[0]} must be a Unix time in whole seconds")
    assert stored() == before


JSON_LEVEL = {
    "truncated",
    "empty",
    "array",
    "nan",
    "minus-infinity",
    "5000-digit-integer",
    "100k-deep",
    "100-deep",
    "nul-value",
    "nul-key",
    "lone-surrogate",
    "bad-utf8",
    "byte-order-mark",
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("body", "error"), [p for p in BAD_BODIES if p.id in JSON_LEVEL])
def test_bad_json_under_a_good_signature_is_400(
    client: Client, sources: None, kind: str, body: bytes, error: Any
) -> None:
    before = stored()
    assert_rejected(send(client, kind, body), 400, error)
    assert stored() == before
