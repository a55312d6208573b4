"""Fan-out limits (events/fanout.py): deliveries per event, follow-up events per delivery and
the depth of a chain of follow-ups, each ending in a dead letter that says why."""

from __future__ import annotations

from typing import Any

import pytest

from events import dead_letters, dispatch
from events.delivery import execute
from events.models import Attempt, Delivery, Event, Route, Source
from events.publish import publish
from events.transitions import requeue
from tests.testapp.fanout_handlers import BURST_TYPE, LOOP_TYPE

from .conftest import WIDE_TYPE

pytestmark = pytest.mark.django_db

FANOUT_ERROR = "events.fanout.FanOutLimit"


@pytest.fixture
def source(db: None) -> Source:
    return Source.objects.create(slug="fanout", kind="api")


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    jobs: list[Any] = []
    monkeypatch.setattr(dispatch, "enqueue", lambda batch: jobs.extend(batch))
    return jobs


def deliveries_of(event: Event) -> list[tuple[str, str, str, str]]:
    return list(
        Delivery.objects.filter(event=event)
        .order_by("route__name")
        .values_list("handler", "status", "error_class", "last_error")
    )


def test_an_event_over_the_delivery_cap_runs_the_first_routes_by_name_and_refuses_the_rest(
    settings: Any,
    source: Source,
    wide_routes: list[Route],
    enqueued: list[Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    # given a cap of two deliveries per event and three matching routes
    settings.SWITCHYARD_MAX_DELIVERIES_PER_EVENT = 2

    # when the event is published
    with django_capture_on_commit_callbacks(execute=True):
        result = publish(source=source, type=WIDE_TYPE, payload={})

    # then the first two routes by name get deliveries, enqueued; the third is refused, on record
    reason = (
        "not run: the event matched 3 routes, over the cap of 2 deliveries per event "
        "(SWITCHYARD_MAX_DELIVERIES_PER_EVENT); only the first 2 by route name run"
    )
    assert result.deliveries == 2
    assert deliveries_of(result.event) == [
        ("test.noop", "pending", "", ""),
        ("test.stamp", "pending", "", ""),
        ("test.child", "dead_lettered", FANOUT_ERROR, reason),
    ]
    runnable = Delivery.objects.filter(event=result.event, status="pending")
    assert sorted(job[0] for job in enqueued) == sorted(runnable.values_list("id", flat=True))
    assert Event.objects.get(id=result.event.id).status == "processing"

    # and once the two have run, the event shows dead-lettered: the refusal stays visible
    for delivery in runnable.order_by("id"):
        assert execute(delivery.id).status == "succeeded"
    assert Event.objects.get(id=result.event.id).status == "dead_lettered"


def test_an_event_at_the_delivery_cap_runs_every_route(
    settings: Any, source: Source, wide_routes: list[Route]
) -> None:
    settings.SWITCHYARD_MAX_DELIVERIES_PER_EVENT = 3

    result = publish(source=source, type=WIDE_TYPE, payload={})

    assert result.deliveries == 3
    assert [status for _, status, _, _ in deliveries_of(result.event)] == ["pending"] * 3
    assert Event.objects.get(id=result.event.id).status == "received"


def test_a_delivery_over_its_routes_emit_cap_is_dead_lettered_and_publishes_nothing(
    routes: None, source: Source
) -> None:
    # given a burst of three follow-ups, and the route's cap lowered to two after publishing
    event = publish(source=source, type=BURST_TYPE, payload={"count": 3}).event
    Route.objects.filter(handler="test.burster").update(max_emits=2)
    delivery = Delivery.objects.get(event=event)

    # when it runs
    outcome = execute(delivery.id)

    # then it is dead-lettered at once (three attempts allowed, one used), with the reason
    reason = "emitted 3 follow-up events, over the route's cap of 2; none was published"
    assert outcome.status == "dead_lettered"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.error_class, delivery.last_error) == (
        "dead_lettered",
        FANOUT_ERROR,
        reason,
    )
    assert list(
        Attempt.objects.filter(delivery=delivery).values_list(
            "status", "error_class", "error_message", "traceback"
        )
    ) == [("failed", FANOUT_ERROR, reason, "")]
    assert Event.objects.filter(type="test.fanout.item").count() == 0
    assert Event.objects.get(id=event.id).status == "dead_lettered"


def test_a_delivery_at_its_routes_emit_cap_publishes_every_follow_up_one_level_deeper(
    routes: None, source: Source
) -> None:
    Route.objects.filter(handler="test.burster").update(max_emits=2)
    event = publish(source=source, type=BURST_TYPE, payload={"count": 2}).event
    delivery = Delivery.objects.get(event=event)

    assert execute(delivery.id).status == "succeeded"

    follow_ups = Event.objects.filter(type="test.fanout.item").order_by("external_id")
    assert [(e.payload, e.depth, e.emitted_by_id) for e in follow_ups] == [
        ({"n": 0}, 1, delivery.id),
        ({"n": 1}, 1, delivery.id),
    ]
    assert Event.objects.get(id=event.id).depth == 0


def test_a_route_without_its_own_emit_cap_uses_the_setting(
    settings: Any, routes: None, source: Source
) -> None:
    settings.SWITCHYARD_MAX_EMITS_PER_DELIVERY = 1
    event = publish(source=source, type=BURST_TYPE, payload={"count": 2}).event
    delivery = Delivery.objects.get(event=event)

    assert execute(delivery.id).status == "dead_lettered"

    delivery.refresh_from_db()
    assert delivery.last_error == (
        "emitted 2 follow-up events, over the route's cap of 1; none was published"
    )
    assert Event.objects.filter(type="test.fanout.item").count() == 0


def run_loop(source: Source, steps: int) -> list[Event]:
    """Publish the looping event and run each new delivery in turn, ``steps`` times at most;
    the loop's events, oldest first."""
    publish(source=source, type=LOOP_TYPE, payload={"step": 0})
    for _ in range(steps):
        waiting = Delivery.objects.filter(handler="test.looper", status="pending").first()
        if waiting is None:
            break
        execute(waiting.id)
    return list(Event.objects.filter(type=LOOP_TYPE).order_by("depth"))


def test_a_loop_stops_at_the_depth_cap_with_the_chain_in_the_reason(
    settings: Any, routes: None, source: Source
) -> None:
    # given follow-ups may be at most three deep, and a handler that emits its own event type
    settings.SWITCHYARD_MAX_EMIT_DEPTH = 3

    # when the loop runs until nothing is left to run
    events = run_loop(source, steps=20)

    # then it stopped at depth 3: that event's delivery is dead-lettered, nothing deeper exists
    assert [(e.depth, e.payload) for e in events] == [(n, {"step": n}) for n in range(4)]
    assert [e.status for e in events] == ["processed"] * 3 + ["dead_lettered"]
    last = Delivery.objects.get(event=events[-1])
    assert (last.status, last.error_class, last.last_error) == (
        "dead_lettered",
        FANOUT_ERROR,
        "follow-up events would be 4 deep, over the cap of 3 (SWITCHYARD_MAX_EMIT_DEPTH); "
        "none was published. Chain: test.fanout.loop (4 times) -> test.fanout.loop (refused)",
    )
    assert Attempt.objects.filter(delivery=last).count() == 1


def test_the_chain_in_the_reason_starts_at_the_event_from_outside(
    settings: Any, routes: None, source: Source
) -> None:
    # given a burst whose follow-up type is routed to the looper
    settings.SWITCHYARD_MAX_EMIT_DEPTH = 1
    Route.objects.create(name="loop on items", event_type="test.fanout.item", handler="test.looper")
    event = publish(source=source, type=BURST_TYPE, payload={"count": 1}).event
    execute(Delivery.objects.get(event=event).id)

    # when the looper handles the item (depth 1) and emits
    item = Delivery.objects.get(event__type="test.fanout.item")
    assert execute(item.id).status == "dead_lettered"

    item.refresh_from_db()
    assert item.last_error.endswith(
        "Chain: test.fanout.burst -> test.fanout.item -> test.fanout.loop (refused)"
    )


def test_fan_out_dead_letters_group_by_cause_whatever_the_counts(
    routes: None, source: Source
) -> None:
    Route.objects.filter(handler="test.burster").update(max_emits=2)
    for count in (3, 5):
        event = publish(source=source, type=BURST_TYPE, payload={"count": count}).event
        execute(Delivery.objects.get(event=event).id)

    groups, _ = dead_letters.groups()

    assert [(g.handler, g.error_class, g.fingerprint, g.count) for g in groups] == [
        (
            "test.burster",
            FANOUT_ERROR,
            "emitted <n> follow-up events, over the route's cap of <n>; none was published",
            2,
        )
    ]


def test_a_refused_delivery_requeued_by_an_operator_runs(
    settings: Any, source: Source, wide_routes: list[Route]
) -> None:
    settings.SWITCHYARD_MAX_DELIVERIES_PER_EVENT = 2
    event = publish(source=source, type=WIDE_TYPE, payload={}).event
    refused = Delivery.objects.get(event=event, status="dead_lettered")

    assert requeue([refused.id], by="ops") == 1
    assert execute(refused.id).status == "succeeded"

    refused.refresh_from_db()
    assert (refused.handler, refused.total_attempts) == ("test.child", 1)


def test_raising_the_routes_emit_cap_and_requeuing_publishes_the_follow_ups(
    routes: None, source: Source
) -> None:
    # given a burst of three dead-lettered over a cap of two
    Route.objects.filter(handler="test.burster").update(max_emits=2)
    event = publish(source=source, type=BURST_TYPE, payload={"count": 3}).event
    delivery = Delivery.objects.get(event=event)
    assert execute(delivery.id).status == "dead_lettered"

    # when the operator raises the cap and requeues it
    Route.objects.filter(handler="test.burster").update(max_emits=3)
    requeue([delivery.id], by="ops")

    # then its next attempt succeeds and publishes all three
    assert execute(delivery.id).status == "succeeded"
    items = Event.objects.filter(type="test.fanout.item", emitted_by=delivery)
    assert sorted(e.payload["n"] for e in items) == [0, 1, 2]
    assert Event.objects.get(id=event.id).status == "processed"
