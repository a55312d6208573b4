"""Helpers for the provider webhook tests: sources, a pinned clock, posting signed requests."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from events.models import Source
from events.webhooks import KINDS

from ..ingest.conftest import Response, assert_rejected, stored

__all__ = ["KIND_NAMES", "NOW", "VECTORS", "Response", "assert_rejected", "post", "stored"]

# Real payloads and the providers' signature vectors (see fixtures/README.md).
FIXTURES = Path(__file__).resolve().parent / "fixtures"
VECTORS: dict[str, Any] = json.loads((FIXTURES / "signature-vectors.json").read_text())
GITHUB_FIXTURES = FIXTURES / "github"

# Every registered webhook kind: the generated tests run for each, so a new kind is tested (and
# fails until fixtures/signature-vectors.json has a signed request for it).
KIND_NAMES = sorted(KINDS)

# The clock every timestamped kind reads in these tests, unless a test pins another.
NOW = 1_700_000_000

NEW_SECRET = "new-secret"
OLD_SECRET = "old-secret"
# Standard Webhooks secrets are whsec_ + base64 of the key.
SW_NEW = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_OLD = "whsec_" + "b2xkLWtleS1vbGQta2V5LW9sZC1rZXk="
STRIPE_NEW = "whsec_new_stripe_secret"
STRIPE_OLD = "whsec_old_stripe_secret"


@pytest.fixture
def client() -> Client:
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[float], None]]:
    """Pin every timestamped kind's clock to NOW; call the fixture to move it."""
    current = [float(NOW)]
    for kind in KINDS.values():
        if hasattr(kind, "clock"):
            monkeypatch.setattr(kind, "clock", lambda: current[0])

    def set_now(value: float) -> None:
        current[0] = value

    yield set_now


@pytest.fixture
def github_source(db: None) -> Source:
    return Source.objects.create(slug="gh", kind="github", secrets=[NEW_SECRET, OLD_SECRET])


@pytest.fixture
def stripe_source(db: None) -> Source:
    return Source.objects.create(slug="pay", kind="stripe", secrets=[STRIPE_NEW, STRIPE_OLD])


@pytest.fixture
def slack_source(db: None) -> Source:
    return Source.objects.create(
        slug="chat",
        kind="slack",
        secrets=[NEW_SECRET, OLD_SECRET],
        settings={"bot_user": "U0BOT"},
    )


@pytest.fixture
def sw_source(db: None) -> Source:
    return Source.objects.create(slug="svix", kind="standard_webhooks", secrets=[SW_NEW, SW_OLD])


def post(
    client: Client,
    slug: str,
    body: bytes,
    headers: dict[str, str],
    content_type: str = "application/json",
) -> Response:
    return client.post(f"/hooks/{slug}", data=body, content_type=content_type, headers=headers)


def vector(kind: str) -> dict[str, Any]:
    """The kind's known-good signed request from fixtures/signature-vectors.json."""
    if kind not in VECTORS:
        pytest.fail(f"no signature vector for kind {kind!r} in fixtures/signature-vectors.json")
    found: dict[str, Any] = VECTORS[kind]
    return found


def vector_now(kind: str) -> int:
    """The clock for the kind's requests: its vector's ``now`` where the scheme signs a time."""
    return int(vector(kind).get("now", NOW))


@pytest.fixture
def kind_sources(db: None, monkeypatch: pytest.MonkeyPatch) -> dict[str, Source]:
    """A source of every registered kind, slug = kind name, with its vector's secret and
    settings; each kind's clock pinned to its vector's ``now``. (A kind without a vector gets
    none: its own tests fail, in vector(), and the others run.)"""
    sources = {}
    for name in KIND_NAMES:
        if name not in VECTORS:
            continue
        spec = VECTORS[name]
        sources[name] = Source.objects.create(
            slug=name, kind=name, secrets=[spec["secret"]], settings=spec.get("settings", {})
        )
        monkeypatch.setattr(KINDS[name], "clock", fixed_clock(vector_now(name)))
    return sources


def fixed_clock(now: int) -> Callable[[], float]:
    return lambda: float(now)


def signed_headers(kind: str, body: bytes, secret: str | None = None) -> dict[str, str]:
    """A request of ``kind`` for ``body`` as its sender would sign it, at the vector's now."""
    spec = vector(kind)
    return {
        **spec.get("unsigned_headers", {}),
        **KINDS[kind].sign_request(secret or spec["secret"], body, vector_now(kind)),
    }
