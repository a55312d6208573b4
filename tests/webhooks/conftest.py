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

__all__ = ["NOW", "VECTORS", "Response", "assert_rejected", "post", "stored"]

# Real payloads and the providers' signature vectors (see fixtures/README.md).
FIXTURES = Path(__file__).resolve().parent / "fixtures"
VECTORS: dict[str, Any] = json.loads((FIXTURES / "signature-vectors.json").read_text())
GITHUB_FIXTURES = FIXTURES / "github"

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
