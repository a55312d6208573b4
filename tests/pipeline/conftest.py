"""Fixtures the pipeline's fan-out tests share."""

from __future__ import annotations

import pytest

from events.models import Route

# An event type three routes match (``wide_routes``).
WIDE_TYPE = "test.fanout.wide"


@pytest.fixture
def wide_routes(db: None) -> list[Route]:
    """Three routes for one event type, to three handlers; by name: noop, stamp, child."""
    return [
        Route.objects.create(name=name, event_type=WIDE_TYPE, handler=handler)
        for name, handler in (
            ("wide 1", "test.noop"),
            ("wide 2", "test.stamp"),
            ("wide 3", "test.child"),
        )
    ]
