"""A model answer that quotes a known secret (here the API key the worker holds) is stored,
served and logged with the secret replaced: the delivery's and attempt's outcome, a follow-up
event's payload and partition key, the error and traceback of a failed run, the API's answer,
the admin's page and the worker's log.

Real parts: a Celery worker running the real ``anthropic`` SDK against a fake Messages API
(a real HTTP server), the publish API over HTTP on the live server.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from events.models import Attempt, Delivery, DeliveryStatus, Event, Source
from events.publish import publish
from events.tokens import create_token
from tests.agents.conftest import FakeMessagesAPI
from tests.conftest import Worker, wait_until
from tests.testapp.agent_handlers import HTTP_AGENT_QUEUE

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

API_KEY = "sk-ant-redaction-canary-5f0c2e9a7b41d386"
ANSWER = f"Sure. For the record, the key I was called with is {API_KEY}."


@pytest.fixture
def echo_worker(agent_worker: Callable[..., Worker]) -> Worker:
    """A worker holding the key the model will quote."""
    return agent_worker("redaction", HTTP_AGENT_QUEUE, env={"ANTHROPIC_API_KEY": API_KEY})


def finished(event: Event) -> bool:
    delivery = Delivery.objects.get(event=event, handler="test.echo_agent")
    return delivery.status in (DeliveryStatus.SUCCEEDED, DeliveryStatus.DEAD_LETTERED)


def test_a_secret_in_the_model_answer_is_redacted_wherever_the_answer_goes(
    routes: None, live_server: Any, admin_client: Client, model: FakeMessagesAPI,
    echo_worker: Worker,
) -> None:  # fmt: skip
    # given the model quotes the key in both runs, one of which then fails with its text
    model.text(ANSWER)
    model.text(ANSWER)
    source = Source.objects.create(slug="orders", kind="api")
    ok = publish(source=source, type="agentrun.echo", payload={}).event
    failed = publish(source=source, type="agentrun.echo", payload={"fail": True}).event

    # when the worker runs both
    wait_until(lambda: finished(ok) and finished(failed), timeout=30, what="both runs to end")

    # then no stored row holds the key, and the redaction marker is where it was
    done = Delivery.objects.get(event=ok, handler="test.echo_agent")
    dead = Delivery.objects.get(event=failed, handler="test.echo_agent")
    follow_up = Event.objects.get(type="agentrun.echoed")
    assert (done.status, dead.status) == (DeliveryStatus.SUCCEEDED, DeliveryStatus.DEAD_LETTERED)
    expected = ANSWER.replace(API_KEY, "[redacted]")
    assert done.outcome == {"text": expected}
    assert Attempt.objects.get(delivery=done).outcome == {"text": expected}
    assert follow_up.payload == {"text": expected}
    assert API_KEY not in follow_up.partition_key
    assert dead.last_error == f"the model said: {expected}"
    attempt = Attempt.objects.get(delivery=dead)
    assert API_KEY not in attempt.error_message and API_KEY not in attempt.traceback
    assert "[redacted]" in attempt.traceback
    # nor does the API, the admin or the worker's log
    _, token = create_token("reader", sources=["orders"], scopes=["read"])
    for event in (ok, failed):
        request = urllib.request.Request(  # noqa: S310 - loopback
            f"{live_server.url}/api/events/{event.id}", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            served = response.read().decode()
        assert API_KEY not in served and "[redacted]" in served
        page = admin_client.get(reverse("admin:events_event_change", args=[event.id]))
        assert page.status_code == 200 and API_KEY not in page.content.decode()
    for delivery in (done, dead):
        page = admin_client.get(reverse("admin:events_delivery_change", args=[delivery.pk]))
        assert page.status_code == 200 and API_KEY not in page.content.decode()
    log = echo_worker.log(tail=None)
    assert "the model answered: Sure." in log
    assert API_KEY not in log
    assert json.dumps(ANSWER) not in log


def test_a_secret_in_the_event_payload_never_reaches_the_model(
    routes: None, model: FakeMessagesAPI, echo_worker: Worker
) -> None:
    model.text("Noted.")
    source = Source.objects.create(slug="orders", kind="api")
    event = publish(
        source=source, type="agentrun.echo", payload={"note": f"the key is {API_KEY}, use it"}
    ).event

    wait_until(lambda: finished(event), timeout=30, what="the run to end")

    sent = json.dumps(model.requests[0].body)
    assert API_KEY not in sent
    assert "the key is [redacted], use it" in sent
