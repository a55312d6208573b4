"""Stored events to replay: two reservation cancellations (routed to test.rebook and
test.notify), a question for the test.http_agent agent with two recent runs traced, a refund
request for test.refund_agent (an agent with no runs), from an api source."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from events import dispatch
from events.models import (
    Attempt,
    AttemptStatus,
    Delivery,
    DeliveryStatus,
    Event,
    EventStatus,
    Route,
    Source,
)
from handlers.models import Step

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
Jobs = list[tuple[int, str, int]]


def stored(source: Source, n: int, type: str, status: str = EventStatus.PROCESSED) -> Event:
    """An event as the pipeline left it, with a succeeded delivery per route it had."""
    event = Event.objects.create(
        source=source,
        external_id=f"orig-{n}",
        type=type,
        schema_version=2,
        partition_key=f"guest-{n}",
        payload={"guest": f"g{n}", "n": n},
        status=status,
        received_at=T0 + timedelta(minutes=n),
    )
    for route in Route.objects.filter(event_type=type):
        Delivery.objects.create(
            event=event, route=route, handler=route.handler, status=DeliveryStatus.SUCCEEDED
        )
    return event


def agent_run(n: int, handler: str, tokens: tuple[int, int], cost: str) -> None:
    """One recent run of an agent: a delivery whose attempt made two LLM calls and a tool call
    (the tool call spends nothing). Its event comes from another source, of a type no route
    takes."""
    past, _ = Source.objects.get_or_create(slug="past", kind="api")
    event = Event.objects.create(source=past, external_id=f"run-{n}", type="past", payload={})
    delivery = Delivery.objects.create(event=event, handler=handler, status="succeeded")
    attempt = Attempt.objects.create(delivery=delivery, number=1, status=AttemptStatus.SUCCEEDED)
    for number, kind in enumerate(["llm", "tool", "llm"], start=1):
        Step.objects.create(
            attempt=attempt,
            number=number,
            kind=kind,
            name="claude-sonnet-5-5" if kind == "llm" else "lookup",
            input_tokens=tokens[0] if kind == "llm" else 0,
            output_tokens=tokens[1] if kind == "llm" else 0,
            cost_usd=Decimal(cost) if kind == "llm" else Decimal(0),
        )


@pytest.fixture
def source(routes: None) -> Source:
    return Source.objects.create(slug="crm", kind="api")


@pytest.fixture
def originals(source: Source) -> dict[str, Event]:
    made = {
        "first": stored(source, 1, "scenario.reservation.cancelled"),
        "second": stored(source, 2, "scenario.reservation.cancelled", EventStatus.DEAD_LETTERED),
        "question": stored(source, 3, "agentrun.question"),
        "refund": stored(source, 4, "agentrun.refund_requested"),
    }
    # test.http_agent's recent runs: 2 x (100 + 20) and 2 x (300 + 40) tokens.
    agent_run(1, "test.http_agent", (100, 20), "0.0010")
    agent_run(2, "test.http_agent", (300, 40), "0.0030")
    return made


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[Jobs]:
    """The deliveries publish() sends once each batch commits (no worker runs them)."""
    calls: list[Jobs] = []
    monkeypatch.setattr(dispatch, "enqueue", calls.append)
    return calls


def snapshot(event: Event) -> dict[str, Any]:
    """What a replay must leave as it was: the event's row and its deliveries."""
    event.refresh_from_db()
    row = {f.attname: getattr(event, f.attname) for f in Event._meta.concrete_fields if f.attname}
    deliveries = list(
        Delivery.objects.filter(event=event).order_by("handler").values("id", "handler", "status")
    )
    return {"row": row, "deliveries": deliveries}
