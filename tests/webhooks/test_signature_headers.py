"""Every registered kind refuses missing, empty, repeated and garbage signature headers and
malformed timestamps with a 401 or 400, and bad JSON under a good signature with a 400; none
stores anything. Generated from the registry: each kind gets a source from its signature
vector (fixtures/signature-vectors.json) and requests signed by its own sign_request()."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client
from django.test.client import FakePayload

from events.models import Source
from events.webhooks import KINDS
from events.webhooks.base import MISMATCH
from events.webhooks.stripe import sign as stripe_sign

from ..ingest.conftest import BAD_BODIES
from .conftest import (
    KIND_NAMES,
    Response,
    assert_rejected,
    post,
    signed_headers,
    stored,
    vector,
    vector_now,
)

pytestmark = pytest.mark.django_db

# A body every kind stores unless its vector names another (stored_body): a Stripe event, a
# generic envelope, a Slack callback of a new type.
BODY = b'{"id": "evt_1", "type": "invoice.paid", "payload": {}}'
TIMESTAMPED = sorted(name for name in KIND_NAMES if KINDS[name].timestamp_header)


@pytest.fixture
def sources(kind_sources: dict[str, Source]) -> None:
    """One source of every kind, each kind's clock pinned to its vector's now."""


def stored_body(kind: str) -> bytes:
    body: str | None = vector(kind).get("stored_body")
    return BODY if body is None else body.encode()


def answer(kind: str, signature: str, default: tuple[int, str]) -> tuple[int, str]:
    """What ``kind`` answers a request whose signature header is ``signature``."""
    status, error = vector(kind).get("signature_answers", {}).get(signature, default)
    return status, error


def send(client: Client, kind: str, body: bytes, **changes: str | None) -> Response:
    headers = signed_headers(kind, body)
    for name, value in changes.items():
        header = name.replace("_", "-")
        key = next((k for k in headers if k.lower() == header.lower()), header)
        if value is None:
            del headers[key]
        else:
            headers[key] = value
    return post(client, kind, body, headers)


def test_the_signers_are_accepted(client: Client, sources: None) -> None:
    # The control for every refusal below: unchanged, each kind's request gets in.
    for kind in KIND_NAMES:
        assert send(client, kind, stored_body(kind)).status_code == 202, kind


@pytest.mark.parametrize("kind", KIND_NAMES)
@pytest.mark.parametrize("value", [None, "", "   "], ids=["missing", "empty", "blank"])
def test_missing_or_empty_signature_is_401(
    client: Client, sources: None, kind: str, value: str | None
) -> None:
    header = KINDS[kind].signature_header
    before = stored()
    response = send(client, kind, stored_body(kind), **{header: value})
    assert_rejected(response, *answer(kind, value or "", (401, f"missing {header} header")))
    assert stored() == before


GARBAGE = ["garbage", "sha256=", "v0=zz", "v1,", "t=1", "é" * 10, "\x7f" * 3, "=" * 5]


@pytest.mark.parametrize("kind", KIND_NAMES)
@pytest.mark.parametrize("value", GARBAGE)
def test_garbage_signature_is_401_or_400(
    client: Client, sources: None, kind: str, value: str
) -> None:
    before = stored()
    response = send(client, kind, stored_body(kind), **{KINDS[kind].signature_header: value})
    assert_rejected(response, *answer(kind, value, (401, MISMATCH)))
    assert stored() == before


@pytest.mark.parametrize("kind", TIMESTAMPED)
@pytest.mark.parametrize(
    "make",
    [
        lambda now: str(now * 1000),
        lambda now: f"{now}.5",
        lambda now: "-1",
        lambda now: "1e9",
        lambda now: "NaN",
        lambda now: f" {now}x",
        lambda now: hex(now),
    ],
    ids=["milliseconds", "fraction", "negative", "exponent", "nan", "trailing", "hex"],
)
def test_malformed_timestamp_is_400(client: Client, sources: None, kind: str, make: Any) -> None:
    header = KINDS[kind].timestamp_header
    value = make(vector_now(kind))
    before = stored()
    response = send(client, kind, stored_body(kind), **{header: value})
    assert_rejected(response, 400, f"{header} must be a Unix time in whole seconds")
    assert stored() == before


def test_stripe_millisecond_timestamp_is_400(client: Client, sources: None) -> None:
    signature = stripe_sign(vector("stripe")["secret"], BODY, vector_now("stripe") * 1000)
    before = stored()
    response = send(client, "stripe", BODY, Stripe_Signature=signature)
    assert_rejected(response, 400, "Stripe-Signature t= must be a Unix time in whole seconds")
    assert stored() == before


@pytest.mark.parametrize("kind", TIMESTAMPED)
def test_missing_timestamp_is_401(client: Client, sources: None, kind: str) -> None:
    header = KINDS[kind].timestamp_header
    before = stored()
    response = send(client, kind, stored_body(kind), **{header: None})
    assert_rejected(response, 401, f"missing {header} header")
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


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_repeated_signature_header_is_refused(client: Client, sources: None, kind: str) -> None:
    # given the right signature sent twice (a proxy or a forger adding a second header line)
    body = stored_body(kind)
    headers = list(signed_headers(kind, body).items())
    signature_header = next(h for h in headers if h[0] == KINDS[kind].signature_header)
    before = stored()
    # when
    response = post_asgi(kind, body, [*headers, signature_header])
    # then the joined value matches nothing
    assert response.status_code in (400, 401), response.content
    assert stored() == before


@pytest.mark.parametrize("kind", TIMESTAMPED)
def test_repeated_timestamp_header_is_400(client: Client, sources: None, kind: str) -> None:
    body = stored_body(kind)
    headers = list(signed_headers(kind, body).items())
    timestamp_header = next(h for h in headers if h[0] == KINDS[kind].timestamp_header)
    before = stored()
    response = post_asgi(kind, body, [*headers, timestamp_header])
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


@pytest.mark.parametrize("kind", KIND_NAMES)
@pytest.mark.parametrize(("body", "error"), [p for p in BAD_BODIES if p.id in JSON_LEVEL])
def test_bad_json_under_a_good_signature_is_400(
    client: Client, sources: None, kind: str, body: bytes, error: Any
) -> None:
    before = stored()
    assert_rejected(send(client, kind, body), 400, error)
    assert stored() == before
