"""The five-event scenario, end to end: HTTP in, a real worker, final states out."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from events.models import Attempt, Delivery, Event
from events.webhooks.hmac import HEADER, sign
from tests.conftest import wait_until
from tests.testapp.models import HandlerCall, SideEffect

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

FINAL = {"processed", "dead_lettered", "ignored"}


def post(client: Client, body: dict[str, Any], secret: str = "new-secret") -> Any:
    raw = json.dumps(body).encode()
    return client.post(
        "/hooks/shop",
        data=raw,
        content_type="application/json",
        headers={HEADER: sign(secret, raw)},
    )


def test_five_event_scenario(worker: Any, routes: None, hmac_source: Any) -> None:
    # given two clean cancellations, one that fails permanently, one no route wants,
    # and a duplicate of the first
    client = Client()
    events = [
        {"type": "scenario.reservation.cancelled", "id": "evt_001",
         "payload": {"reservation": "r1", "guest": "Ann"}},
        {"type": "scenario.reservation.cancelled", "id": "evt_002",
         "payload": {"reservation": "r2", "guest": "Bo"}},
        {"type": "scenario.reservation.cancelled", "id": "evt_003",
         "payload": {"reservation": "r3", "guest": "Cy", "fail": "permanent"}},
        {"type": "scenario.reservation.no_show", "id": "evt_004",
         "payload": {"reservation": "r4"}},
    ]  # fmt: skip

    # when they are posted, then the first again
    answers = [post(client, body) for body in events]
    duplicate = post(client, events[0], secret="old-secret")

    # then each new event is accepted and the duplicate answers with the first id
    assert [a.status_code for a in answers] == [202, 202, 202, 202]
    ids = [a.json()["id"] for a in answers]
    assert duplicate.status_code == 200
    assert duplicate.json() == {"id": ids[0], "duplicate": True}

    wait_until(
        lambda: set(Event.objects.values_list("status", flat=True)) <= FINAL,
        timeout=30,
        what="every event to reach a final state",
    )
    status = {e.external_id: e.status for e in Event.objects.all()}
    assert status == {
        "evt_001": "processed",
        "evt_002": "processed",
        "evt_003": "dead_lettered",
        "evt_004": "ignored",
    }
    assert Event.objects.count() == 4

    dead = Delivery.objects.get(event__external_id="evt_003", handler="test.notify")
    assert dead.status == "dead_lettered"
    assert dead.error_class == "handlers.errors.PermanentError"
    assert dead.last_error == "guest record is incomplete"
    assert dead.total_attempts == 1
    attempt = Attempt.objects.get(delivery=dead)
    assert attempt.status == "failed"
    assert "PermanentError: guest record is incomplete" in attempt.traceback

    # each handler ran once per event and applied its effect exactly once
    assert Delivery.objects.filter(event__external_id="evt_004").count() == 0
    calls = sorted(
        (c.handler, Event.objects.get(id=c.event_id).external_id) for c in HandlerCall.objects.all()
    )
    assert calls == [
        ("test.notify", "evt_001"),
        ("test.notify", "evt_002"),
        ("test.notify", "evt_003"),
        ("test.rebook", "evt_001"),
        ("test.rebook", "evt_002"),
        ("test.rebook", "evt_003"),
    ]
    assert SideEffect.objects.count() == 5
    assert set(SideEffect.objects.values_list("key", flat=True)) == {
        f"{ids[0]}:test.rebook",
        f"{ids[0]}:test.notify",
        f"{ids[1]}:test.rebook",
        f"{ids[1]}:test.notify",
        f"{ids[2]}:test.rebook",
    }
