"""Fan-out limits on a real worker: a handler that emits its own event type again stops at the
chain depth cap, with a dead letter that says why."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from events.models import Delivery, Event, Route, Source
from events.publish import publish
from tests.conftest import Worker, wait_until
from tests.testapp.fanout_handlers import LOOP_TYPE
from tests.testapp.models import HandlerCall

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

QUEUE = "fanout-loop"


def test_a_handler_emitting_in_a_loop_stops_at_the_depth_cap_with_a_dead_letter(
    request: pytest.FixtureRequest,
    worker_factory: Callable[..., Worker],
    routes: None,
) -> None:
    # given a worker of its own whose follow-ups may be at most three deep, and the looping
    # handler's route sent to that worker's queue
    worker = worker_factory("fanout", queues=QUEUE, env={"SWITCHYARD_MAX_EMIT_DEPTH": "3"})
    request.addfinalizer(worker.stop)
    Route.objects.filter(handler="test.looper").update(queue=QUEUE)
    source = Source.objects.create(slug="fanout-loop", kind="api")

    # when an event starts the loop
    publish(source=source, type=LOOP_TYPE, payload={"step": 0})

    # then the handler runs four times (depths 0 to 3) and its last delivery is dead-lettered
    dead: Any = wait_until(
        lambda: Delivery.objects.filter(handler="test.looper", status="dead_lettered").first(),
        timeout=60,
        what="the loop to be dead-lettered",
    )
    assert dead.error_class == "events.fanout.FanOutLimit"
    assert dead.last_error == (
        "follow-up events would be 4 deep, over the cap of 3 (SWITCHYARD_MAX_EMIT_DEPTH); "
        "none was published. Chain: test.fanout.loop (4 times) -> test.fanout.loop (refused)"
    )
    time.sleep(1.0)  # anything still to come would be on its way by now
    events = list(Event.objects.filter(type=LOOP_TYPE).order_by("depth"))
    assert [(e.depth, e.status) for e in events] == [
        (0, "processed"),
        (1, "processed"),
        (2, "processed"),
        (3, "dead_lettered"),
    ]
    assert dead.event_id == events[-1].id
    assert HandlerCall.objects.filter(handler="test.looper").count() == 4
