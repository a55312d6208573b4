"""The Stripe source the payment recovery tests post to, and the From address of its emails."""

from __future__ import annotations

from typing import Any

import pytest

from events.models import Source

from .helpers import SECRET


@pytest.fixture
def stripe_source(routes: None) -> Source:
    return Source.objects.create(slug="pay", kind="stripe", secrets=[SECRET])


@pytest.fixture(autouse=True)
def sender(settings: Any) -> str:
    settings.SWITCHYARD_RECOVERY_FROM = "billing@northwind.example"
    return "billing@northwind.example"
