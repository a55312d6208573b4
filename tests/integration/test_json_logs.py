"""A real worker with LOG_FORMAT=json: its lines are JSON, and those about a delivery carry
the event, delivery and attempt ids, whichever logger wrote them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from events.models import Delivery, Route, Source
from events.publish import publish
from tests.conftest import Worker, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_json_worker_log_carries_each_deliverys_ids(
    request: pytest.FixtureRequest, routes: None, worker_factory: Callable[..., Worker]
) -> None:
    # on a queue of its own, so this worker (not the session's plain one) runs the delivery
    Route.objects.filter(handler="test.child").update(queue="json-logs")
    worker = worker_factory("json-logs", queues="json-logs", env={"LOG_FORMAT": "json"})
    request.addfinalizer(worker.stop)
    source = Source.objects.create(slug="json-logs", kind="api")
    event = publish(source=source, type="test.emitted", payload={"parent": "p"}).event

    delivery = wait_until(
        lambda: Delivery.objects.filter(event=event, status="succeeded").first(),
        what="the delivery to succeed",
    )

    def about_it() -> list[dict[str, Any]]:
        found = []
        for line in worker.log(tail=None).splitlines():
            try:
                document = json.loads(line)
            except ValueError:
                continue  # Celery's start-up banner is printed, not logged
            if document.get("delivery_id") == delivery.id:
                found.append(document)
        return found

    lines = wait_until(
        lambda: [d for d in about_it() if "succeeded on attempt" in d["message"]] and about_it(),
        what="the worker's JSON line about the success",
    )
    for line in lines:
        assert line["event_id"] == str(event.id)
        assert line["attempt"] == 1
        assert line["handler"] == "test.child"
        assert {"time", "level", "logger"} <= set(line)
    # the pipeline's own line and the handler's (through ctx.logger) both carry them
    assert {"switchyard.pipeline", "switchyard.handlers"} <= {line["logger"] for line in lines}
