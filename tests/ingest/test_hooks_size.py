"""POST /hooks/<slug>: the body size limit, enforced before any hashing."""

from __future__ import annotations

import hmac
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client
from django.test.client import FakePayload

import events.webhooks.base as webhook_base
from events.models import Source
from events.webhooks.hmac import HEADER, sign

from .conftest import MISMATCH, Response, assert_rejected, hook_body, post_hook, stored

pytestmark = pytest.mark.django_db


@pytest.fixture
def hashing_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every signature check and every HMAC computed while a request is handled."""
    calls: list[str] = []
    real_matches = webhook_base.matches_any
    real_new = hmac.new

    def spy_matches(*args: Any, **kwargs: Any) -> bool:
        calls.append("matches_any")
        return real_matches(*args, **kwargs)

    def spy_new(*args: Any, **kwargs: Any) -> Any:
        calls.append("hmac.new")
        return real_new(*args, **kwargs)

    monkeypatch.setattr(webhook_base, "matches_any", spy_matches)
    monkeypatch.setattr(hmac, "new", spy_new)
    return calls


def body_of_size(size: int) -> bytes:
    """A valid envelope padded to exactly ``size`` bytes."""
    empty = hook_body(note="")
    body = hook_body(note="x" * (size - len(empty)))
    assert len(body) == size
    return body


def test_body_over_the_limit_is_413_before_any_hashing(
    client: Client, hmac_source: Source, settings: Any, hashing_calls: list[str]
) -> None:
    # given a limit of 300 bytes and a body one byte over it, correctly signed
    settings.SWITCHYARD_MAX_BODY_BYTES = 300
    body = body_of_size(301)
    signature = sign("new-secret", body)
    hashing_calls.clear()
    before = stored()
    # when
    response = post_hook(client, body, signature=signature)
    # then it is refused without computing a single HMAC
    assert_rejected(response, 413, "body is larger than the limit of 300 bytes")
    assert hashing_calls == []
    assert stored() == before


def test_body_exactly_at_the_limit_is_hashed_and_accepted(
    client: Client, hmac_source: Source, settings: Any, hashing_calls: list[str]
) -> None:
    # The control for the test above: the spies do see the hashing of an accepted body.
    settings.SWITCHYARD_MAX_BODY_BYTES = 300
    body = body_of_size(300)
    signature = sign("new-secret", body)
    hashing_calls.clear()
    response = post_hook(client, body, signature=signature)
    assert response.status_code == 202
    assert hashing_calls == ["matches_any", "hmac.new", "hmac.new"]


def test_body_over_the_default_limit_of_one_mib_is_413(client: Client, hmac_source: Source) -> None:
    before = stored()
    response = post_hook(client, body_of_size(1024 * 1024 + 1))
    assert_rejected(response, 413, "body is larger than the limit of 1048576 bytes")
    assert stored() == before


def test_over_the_limit_is_413_even_for_an_unknown_slug(
    client: Client, hmac_source: Source, settings: Any
) -> None:
    settings.SWITCHYARD_MAX_BODY_BYTES = 300
    response = post_hook(client, body_of_size(301), slug="nope")
    assert_rejected(response, 413, "body is larger than the limit of 300 bytes")


def post_asgi(body: bytes, headers: list[tuple[bytes, bytes]]) -> Response:
    """POST through Django's ASGI handler with exactly these headers (no Content-Length added),
    as a chunked upload behind an ASGI server arrives."""
    scope = {
        "method": "POST",
        "path": "/hooks/shop",
        "query_string": "",
        "server": ("127.0.0.1", "80"),
        "scheme": "http",
        "headers": [(b"host", b"testserver"), *headers],
        "_body_file": FakePayload(body),
    }
    response: Response = async_to_sync(AsyncClient().request)(**scope)
    return response


@pytest.mark.parametrize(
    "declared_length",
    [pytest.param(None, id="no-content-length"), pytest.param(b"10", id="lying-content-length")],
)
def test_body_over_the_limit_without_a_trustworthy_content_length_is_413(
    hmac_source: Source, settings: Any, hashing_calls: list[str], declared_length: bytes | None
) -> None:
    # given a body twice the limit and a Content-Length that is missing or too small
    settings.SWITCHYARD_MAX_BODY_BYTES = 300
    body = body_of_size(600)
    headers = [
        (b"content-type", b"application/json"),
        (HEADER.lower().encode(), sign("new-secret", body).encode()),
    ]
    if declared_length is not None:
        headers.append((b"content-length", declared_length))
    hashing_calls.clear()
    before = stored()
    # when
    response = post_asgi(body, headers)
    # then the read itself stops at the limit
    assert_rejected(response, 413, "body is larger than the limit of 300 bytes")
    assert hashing_calls == []
    assert stored() == before


def test_content_length_shorter_than_the_body_reads_only_what_was_declared(
    client: Client, hmac_source: Source
) -> None:
    # Under WSGI Django reads CONTENT_LENGTH bytes and no more: the signature, made over the
    # whole body, then fails on the truncated one.
    body = hook_body()
    before = stored()
    response = post_hook(client, body, CONTENT_LENGTH="10")
    assert_rejected(response, 401, MISMATCH)
    assert stored() == before


def test_content_length_that_is_not_a_number_is_400(client: Client, hmac_source: Source) -> None:
    before = stored()
    response = post_hook(client, hook_body(), CONTENT_LENGTH="lots")
    assert_rejected(response, 400, "Content-Length is not a number")
    assert stored() == before
