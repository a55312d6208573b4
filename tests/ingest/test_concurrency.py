"""50 identical POSTs at once against a real threaded HTTP server: one event, no doubled work."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from events.models import Delivery, Event, Source
from events.webhooks.hmac import HEADER, sign

from .conftest import CANCELLED

pytestmark = pytest.mark.django_db(transaction=True)

SENDERS = 50


@pytest.fixture
def server_url(live_server: Any) -> str:
    """pytest-django's live server, able to queue all SENDERS connections at once.

    Django's test server listens with a backlog of 10; the 40 connections that do not fit are
    reset by the kernel before Django sees them, which says nothing about publish(). A real
    deployment (gunicorn: backlog 2048) queues them, and so does this: on Linux, listen() on a
    listening socket only changes its backlog.
    """
    live_server.thread.httpd.socket.listen(SENDERS * 2)
    return str(live_server.url)


def post_all_at_once(url: str, body: bytes, headers: dict[str, str]) -> list[tuple[int, Any]]:
    """POST ``body`` from SENDERS threads released together; return (status, JSON) of each."""
    barrier = threading.Barrier(SENDERS)

    def send(_: int) -> tuple[int, Any]:
        request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310
        barrier.wait(timeout=30)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    with ThreadPoolExecutor(max_workers=SENDERS) as pool:
        return list(pool.map(send, range(SENDERS)))


def assert_one_accepted(answers: list[tuple[int, Any]]) -> str:
    """Every answer 2xx: exactly one 202, the rest 200 duplicates, all with the same id."""
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] * (SENDERS - 1) + [202], answers
    ids = {body["id"] for _, body in answers}
    assert len(ids) == 1, ids
    (event_id,) = ids
    duplicates = [body for status, body in answers if status == 200]
    assert duplicates == [{"id": event_id, "duplicate": True}] * (SENDERS - 1)
    return event_id


def test_concurrent_identical_webhooks_store_one_event_and_one_delivery_per_route(
    server_url: str, routes: None, hmac_source: Source
) -> None:
    # given one signed event, sent 50 times at the same moment
    body = json.dumps(
        {"type": CANCELLED, "id": "evt_race", "payload": {"reservation": "r1", "guest": "Ann"}}
    ).encode()
    headers = {"Content-Type": "application/json", HEADER: sign("new-secret", body)}
    # when
    answers = post_all_at_once(f"{server_url}/hooks/shop", body, headers)
    # then
    event_id = assert_one_accepted(answers)
    accepted = next(body for status, body in answers if status == 202)
    assert accepted == {"id": event_id, "status": "received", "deliveries": 2}
    event = Event.objects.get()
    assert (str(event.id), event.external_id) == (event_id, "evt_race")
    assert sorted(Delivery.objects.values_list("handler", flat=True)) == [
        "test.notify",
        "test.rebook",
    ]


def test_concurrent_identical_api_publishes_store_one_event_and_one_api_source(
    server_url: str, routes: None, api_token: str
) -> None:
    # given no "api" source yet: all 50 requests race to create it as well
    body = json.dumps({"type": CANCELLED, "id": "evt_race", "payload": {}}).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {api_token}"}
    # when
    answers = post_all_at_once(f"{server_url}/api/events", body, headers)
    # then
    event_id = assert_one_accepted(answers)
    assert list(Source.objects.values_list("slug", flat=True)) == ["api"]
    assert str(Event.objects.get().id) == event_id
    assert Delivery.objects.count() == 2
