"""handlers.context.HandlerContext: what a handler may ask to publish (emit), and its memory
(state): read once on first use, as a copy."""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

import pytest

from handlers.context import Emitted, EventData, HandlerContext, StateSnapshot


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


# --- ctx.state ----------------------------------------------------------------------------


def with_store(ctx: HandlerContext, data: dict[str, Any], version: int) -> list[int]:
    """Give ``ctx`` a state store holding ``data``; the list counts its reads."""
    reads: list[int] = []

    def load() -> StateSnapshot:
        reads.append(1)
        return StateSnapshot(data=data, version=version)

    ctx.load_state = load
    return reads


def test_state_is_read_once_on_first_use_as_a_copy(ctx: HandlerContext) -> None:
    stored = {"tickets": [{"id": "1"}]}
    reads = with_store(ctx, stored, 4)
    assert (ctx.state_read, ctx.state_left(), reads) == (None, None, [])

    ctx.state["tickets"].append({"id": "2"})
    ctx.state["seen"] = 2

    assert reads == [1]
    assert ctx.state_read == StateSnapshot(data={"tickets": [{"id": "1"}]}, version=4)
    assert ctx.state_left() == {"tickets": [{"id": "1"}, {"id": "2"}], "seen": 2}
    assert stored == {"tickets": [{"id": "1"}]}  # what was read is not changed


def test_assigning_state_replaces_it_and_keeps_the_version_read(ctx: HandlerContext) -> None:
    with_store(ctx, {"old": True}, 7)

    ctx.state = {"new": True}

    assert (ctx.state_read.version if ctx.state_read else None, ctx.state_left()) == (
        7,
        {"new": True},
    )
    with pytest.raises(ValueError, match=r"ctx.state must be a dict \(a JSON object\)"):
        ctx.state = ["not", "a", "dict"]  # type: ignore[assignment]


def test_start_over_forgets_the_state_and_the_emitted_events(ctx: HandlerContext) -> None:
    reads = with_store(ctx, {"n": 1}, 1)
    ctx.state["n"] = 2
    ctx.emit("a.b", {})

    ctx.start_over()

    assert (ctx.emitted, ctx.state_read, ctx.state_left()) == ([], None, None)
    assert ctx.state == {"n": 1}
    assert reads == [1, 1]


def test_state_without_a_store_says_so(ctx: HandlerContext) -> None:
    with pytest.raises(RuntimeError, match="nothing keeps state for this run"):
        ctx.state  # noqa: B018
