"""Fan-out limits on a real worker: a handler that emits its own event type again stops at the
chain depth cap, with a dead letter that says why; a route's depth cap and a source's delivery
cap edited in the database reach the running worker within its lookup memo."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from events.models import Delivery, Event, Route, Source
from events.publish import PublishResult, internal_source, publish
from tests.conftest import Worker, wait_until
from tests.testapp.fanout_handlers import BURST_TYPE, LOOP_TYPE
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


LIVE_QUEUE = "fanout-live"
ITEM_TYPE = "test.fanout.item"
FINAL = ("succeeded", "dead_lettered")


def _item_deliveries(result: PublishResult) -> list[tuple[str, str]]:
    """The burst's follow-up's deliveries (handler, status) by route name, once all are final."""
    item: Any = wait_until(
        lambda: Event.objects.filter(type=ITEM_TYPE, emitted_by__event=result.event).first(),
        timeout=30,
        what="the burst's follow-up",
    )
    wait_until(
        lambda: not Delivery.objects.filter(event=item).exclude(status__in=FINAL).exists(),
        timeout=30,
        what="the follow-up's deliveries to end",
    )
    return list(
        Delivery.objects.filter(event=item).order_by("route__name").values_list("handler", "status")
    )


def _dead_loop_depth(dead_letters: int) -> tuple[int, str]:
    """Once the looper has ``dead_letters`` dead letters in all: the depth and reason of the
    newest (a handler run is recorded when it starts, its dead letter after it returns)."""
    dead = Delivery.objects.filter(handler="test.looper", status="dead_lettered")
    wait_until(
        lambda: dead.count() == dead_letters,
        timeout=60,
        what=f"the looper's dead letter number {dead_letters}",
    )
    newest: Any = dead.select_related("event").order_by("-id").first()
    return newest.event.depth, newest.last_error.split(";")[0]


def test_caps_edited_in_the_database_reach_a_running_worker_within_its_lookup_memo(
    request: pytest.FixtureRequest,
    worker_factory: Callable[..., Worker],
    routes: None,
) -> None:
    # given a worker of its own keeping looked-up rows 2 s; the looper's route capped at
    # depth 1; the burster's follow-ups going to two routes, in the follow-ups' source capped
    # at one delivery an event
    worker = worker_factory(
        "fanout-live", queues=LIVE_QUEUE, env={"SWITCHYARD_TEST_LOOKUP_CACHE_SECONDS": "2"}
    )
    request.addfinalizer(worker.stop)
    Route.objects.filter(handler__in=["test.looper", "test.burster"]).update(queue=LIVE_QUEUE)
    loop_route = Route.objects.filter(handler="test.looper")
    loop_route.update(max_depth=1)
    for name, handler in (("items 1", "test.noop"), ("items 2", "test.stamp")):
        Route.objects.create(name=name, event_type=ITEM_TYPE, handler=handler, queue=LIVE_QUEUE)
    follow_ups = Source.objects.filter(id=internal_source().id)
    follow_ups.update(max_deliveries_per_event=1)
    source = Source.objects.create(slug="fanout-live", kind="api")

    publish(source=source, type=LOOP_TYPE, payload={"step": 0})
    assert _dead_loop_depth(1) == (
        1,
        "follow-up events would be 2 deep, over the cap of 1 (the route's max_depth)",
    )
    first = _item_deliveries(publish(source=source, type=BURST_TYPE, payload={"count": 1}))
    assert first == [("test.noop", "succeeded"), ("test.stamp", "dead_lettered")]

    # when both caps are raised in the database while the worker runs, and its memo lapses
    loop_route.update(max_depth=3)
    follow_ups.update(max_deliveries_per_event=2)
    time.sleep(2.5)

    # then its next loop goes three deep, and the next burst's follow-up runs both routes
    publish(source=source, type=LOOP_TYPE, payload={"step": 0})
    assert _dead_loop_depth(2) == (
        3,
        "follow-up events would be 4 deep, over the cap of 3 (the route's max_depth)",
    )
    later = _item_deliveries(publish(source=source, type=BURST_TYPE, payload={"count": 1}))
    assert later == [("test.noop", "succeeded"), ("test.stamp", "succeeded")]
    assert HandlerCall.objects.filter(handler="test.looper").count() == 2 + 4
