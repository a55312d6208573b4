"""The metrics-check handler counts the hour before its tick: events by status, dead letters."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from events.models import Delivery, DeliveryStatus, Event, EventStatus, Source
from handlers import registry
from handlers.context import EventData, HandlerContext

pytestmark = pytest.mark.django_db

END = datetime(2026, 3, 29, 7, 0, tzinfo=UTC)


def event(source: Source, minutes_before: float, status: str) -> Event:
    return Event.objects.create(
        source=source,
        external_id=uuid.uuid4().hex,
        type="test.any",
        payload={},
        status=status,
        received_at=END - timedelta(minutes=minutes_before),
    )


def dead_letter(source: Source, minutes_before: float) -> Delivery:
    return Delivery.objects.create(
        event=event(source, 120, EventStatus.DEAD_LETTERED),
        handler="test.chaos",
        status=DeliveryStatus.DEAD_LETTERED,
        finished_at=END - timedelta(minutes=minutes_before),
    )


def context() -> HandlerContext:
    data = EventData(
        id=str(uuid.uuid4()),
        type="schedule.metrics-check",
        payload={},
        source="schedules",
        external_id=f"metrics-check@{END.isoformat()}",
        partition_key="",
        schema_version=1,
        received_at=END.isoformat(),
    )
    return HandlerContext(
        event=data,
        attempt=1,
        handler="metrics-check",
        idempotency_key="k",
        logger=logging.getLogger("test"),
    )


def test_counts_the_hour_before_the_tick_by_status_and_the_dead_letters(
    hmac_source: Source,
) -> None:
    # given events inside and outside the hour before the tick, and dead letters
    for minutes, status in [
        (1, EventStatus.PROCESSED),
        (30, EventStatus.PROCESSED),
        (59.9, EventStatus.FAILED),
        (60, EventStatus.IGNORED),  # the hour's first instant counts
        (60.1, EventStatus.PROCESSED),  # before the hour
        (0, EventStatus.RECEIVED),  # the tick's own instant is the next hour's
    ]:
        event(hmac_source, minutes, status)
    dead_letter(hmac_source, 10)
    dead_letter(hmac_source, 90)

    # when the handler registered for schedule.metrics-check runs
    spec = registry.get("metrics-check")
    assert spec is not None and spec.on == ("schedule.metrics-check",)
    outcome = spec.fn(context())

    # then
    assert outcome == {
        "window_start": "2026-03-29T06:00:00+00:00",
        "window_end": "2026-03-29T07:00:00+00:00",
        "events": {
            "received": 0,
            "processing": 0,
            "failed": 1,
            "dead_lettered": 0,
            "processed": 2,
            "ignored": 1,
        },
        "events_total": 4,
        "dead_lettered_in_window": 1,
        "dead_letters_open": 2,
    }
