"""Fixtures for the admin tests (the data itself is built in ``helpers``)."""

from __future__ import annotations

from typing import Any

import pytest

from events.models import Source

from .helpers import Jobs, data_fixture, enqueued_fixture


@pytest.fixture
def data(hmac_source: Source, routes: None) -> dict[str, Any]:
    """Three events: one processed, one dead-lettered (two dead letters), one ignored."""
    return data_fixture(hmac_source)


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[Jobs]:
    """Every enqueue() call that requeue() makes once its transaction commits."""
    return enqueued_fixture(monkeypatch)
