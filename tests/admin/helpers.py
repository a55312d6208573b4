"""Data and helpers for the admin tests: events with deliveries and attempts, and the lists'
URLs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

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

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
Jobs = list[tuple[int, str, int]]


def make_event(
    source: Source,
    external_id: str,
    type: str,
    status: str,
    minutes: int,
    id: uuid.UUID | None = None,
) -> Event:
    return Event.objects.create(
        id=id or uuid.uuid4(),
        source=source,
        external_id=external_id,
        type=type,
        payload={"order": external_id, "note": "payload-marker"},
        status=status,
        received_at=T0 + timedelta(minutes=minutes),
    )


def make_delivery(event: Event, handler: str, status: str, **fields: Any) -> Delivery:
    route = Route.objects.filter(handler=handler).first()
    return Delivery.objects.create(
        event=event, route=route, handler=handler, status=status, **fields
    )


def make_dead(event: Event, handler: str, minutes: int, error: str = "ValueError") -> Delivery:
    delivery = make_delivery(
        event,
        handler,
        DeliveryStatus.DEAD_LETTERED,
        attempts=3,
        total_attempts=3,
        error_class=error,
        last_error=f"{error}: guest record is incomplete",
        finished_at=T0 + timedelta(minutes=minutes),
    )
    for number in (1, 2, 3):
        Attempt.objects.create(
            delivery=delivery,
            number=number,
            status=AttemptStatus.FAILED,
            started_at=T0,
            finished_at=T0 + timedelta(seconds=1),
            duration_ms=1000,
            worker="celery@w1",
            error_class=error,
            error_message="guest record is incomplete",
            traceback=f"Traceback (most recent call last):\n  attempt {number} frame-marker\n",
            retry_delay=None if number == 3 else 2.0 * number,
        )
    return delivery


def data_fixture(hmac_source: Source) -> dict[str, Any]:
    """Three events: one processed, one dead-lettered (two dead letters), one ignored."""
    api = Source.objects.create(slug="api", kind="api")
    paid = make_event(hmac_source, "ord_1", "shop.order.paid", EventStatus.PROCESSED, 1)
    cancelled = make_event(
        hmac_source, "ord_2", "scenario.reservation.cancelled", EventStatus.DEAD_LETTERED, 2
    )
    ignored = make_event(api, "ord_3", "shop.order.refunded", EventStatus.IGNORED, 3)
    ok = make_delivery(paid, "test.rebook", DeliveryStatus.SUCCEEDED, attempts=1, total_attempts=1)
    dead_old = make_dead(cancelled, "test.notify", minutes=10, error="ValueError")
    dead_new = make_dead(cancelled, "test.rebook", minutes=20, error="KeyError")
    return {
        "paid": paid,
        "cancelled": cancelled,
        "ignored": ignored,
        "ok": ok,
        "dead_old": dead_old,
        "dead_new": dead_new,
    }


def enqueued_fixture(monkeypatch: pytest.MonkeyPatch) -> list[Jobs]:
    """Every enqueue() call that requeue() makes once its transaction commits."""
    calls: list[Jobs] = []
    monkeypatch.setattr(dispatch, "enqueue", calls.append)
    return calls


def listed(client: Client, url: str) -> list[Any]:
    response = client.get(url)
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def form_errors(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 200, "the form was accepted"
    return {
        name: list(errors) for name, errors in response.context["adminform"].form.errors.items()
    }


EVENTS = reverse("admin:events_event_changelist")
DELIVERIES = reverse("admin:events_delivery_changelist")
DEAD = reverse("admin:events_deadletter_changelist")


def short(event: Event) -> str:
    return str(event.pk)[:8]


def requeue_url(pk: int) -> str:
    return reverse("admin:events_deadletter_requeue", args=[pk])


def delivery_page(delivery: Delivery) -> str:
    return reverse("admin:events_delivery_change", args=[delivery.pk])


def event_page(pk: Any) -> str:
    return reverse("admin:events_event_change", args=[pk])


def assert_requeued(delivery: Delivery) -> None:
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.total_attempts) == (
        DeliveryStatus.PENDING,
        0,
        3,
    )
    assert delivery.finished_at is None


def assert_still_dead(delivery: Delivery) -> None:
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DEAD_LETTERED, 3)
