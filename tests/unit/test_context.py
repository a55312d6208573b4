"""handlers.context.HandlerContext.emit: what a handler may ask to publish."""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

import pytest

from handlers.context import Emitted, EventData, HandlerContext


@pytest.fixture
def ctx() -> HandlerContext:
    event = EventData(
        id="e1",
        type="a.b",
        payload={},
        source="shop",
        external_id="x1",
        partition_key="",
        schema_version=1,
        received_at="2026-01-01T00:00:00+00:00",
    )
    return HandlerContext(
        event=event,
        attempt=1,
        handler="shop.notify",
        idempotency_key="k",
        logger=logging.getLogger("test"),
    )


def test_emit_records_follow_ups_in_order(ctx: HandlerContext) -> None:
    payload: dict[str, Any] = {"order": 1}
    ctx.emit("shop.notified", payload)
    ctx.emit("shop.audit", OrderedDict(step="sent"), partition_key="o1")
    payload["order"] = 2  # a later change by the handler does not alter what was emitted
    assert ctx.emitted == [
        Emitted(type="shop.notified", payload={"order": 1}, partition_key=None),
        Emitted(type="shop.audit", payload={"step": "sent"}, partition_key="o1"),
    ]
    assert type(ctx.emitted[1].payload) is dict


@pytest.mark.parametrize("event_type", ["", None, 5, b"a.b"])
def test_emit_needs_a_non_empty_type(ctx: HandlerContext, event_type: Any) -> None:
    with pytest.raises(ValueError, match="emit\\(\\) needs a non-empty event type"):
        ctx.emit(event_type, {})
    assert ctx.emitted == []


@pytest.mark.parametrize("payload", [None, [], ["a"], "text", 3])
def test_emit_needs_an_object_payload(ctx: HandlerContext, payload: Any) -> None:
    with pytest.raises(ValueError, match="emit\\(\\) needs a JSON object as payload"):
        ctx.emit("a.b", payload)
    assert ctx.emitted == []
