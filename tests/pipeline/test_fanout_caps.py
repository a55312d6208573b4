"""The fan-out caps an operator sets on a route or a source (events/fanout.py): a route's depth
cap for its deliveries' follow-ups, a source's cap on deliveries per event; each over the
setting, each named in the reason, each picked up by a running process within seconds."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from events.delivery import execute
from events.fanout import SOURCE_CAPS
from events.models import Delivery, Event, Route, Source
from events.publish import publish
from tests.testapp.fanout_handlers import LOOP_TYPE

from .conftest import WIDE_TYPE
from .test_fanout import FANOUT_ERROR, deliveries_of, run_loop

pytestmark = pytest.mark.django_db

SOURCE_CAP = "the source's max_deliveries_per_event"
TTL = 5.0


@pytest.fixture
def source(db: None) -> Source:
    return Source.objects.create(slug="fanout", kind="api")


@pytest.fixture
def memo(settings: Any) -> Iterator[Callable[[float], None]]:
    """The lookup memo on, with a clock the test moves (seconds since the start)."""
    settings.SWITCHYARD_LOOKUP_CACHE_SECONDS = TTL
    now = [1000.0]
    SOURCE_CAPS.clear()
    SOURCE_CAPS.clock = lambda: now[0]

    def advance(seconds: float) -> None:
        now[0] += seconds

    yield advance
    SOURCE_CAPS.clear()


def refused(matched: int, cap: int, origin: str) -> str:
    return (
        f"not run: the event matched {matched} routes, over the cap of {cap} deliveries per "
        f"event ({origin}); only the first {cap} by route name run"
    )


def loop_route(**changes: Any) -> None:
    Route.objects.filter(handler="test.looper").update(**changes)


# --- the route's depth cap -----------------------------------------------------------------


def test_a_routes_depth_cap_stops_a_loop_below_the_setting_and_names_the_route(
    settings: Any, routes: None, source: Source
) -> None:
    # given the setting allows eight levels, the looper's route two
    settings.SWITCHYARD_MAX_EMIT_DEPTH = 8
    loop_route(max_depth=2)

    # when the loop runs until nothing is left to run
    events = run_loop(source, steps=20)

    # then it stopped at depth 2, and the reason says the route's cap did it
    assert [(e.depth, e.status) for e in events] == [
        (0, "processed"),
        (1, "processed"),
        (2, "dead_lettered"),
    ]
    last = Delivery.objects.get(event=events[-1])
    assert (last.status, last.error_class, last.last_error) == (
        "dead_lettered",
        FANOUT_ERROR,
        "follow-up events would be 3 deep, over the cap of 2 (the route's max_depth); "
        "none was published. Chain: test.fanout.loop (3 times) -> test.fanout.loop (refused)",
    )


def test_a_routes_depth_cap_above_the_setting_lets_its_chain_grow_deeper(
    settings: Any, routes: None, source: Source
) -> None:
    settings.SWITCHYARD_MAX_EMIT_DEPTH = 1
    loop_route(max_depth=4)

    events = run_loop(source, steps=20)

    assert [e.depth for e in events] == [0, 1, 2, 3, 4]
    assert [e.status for e in events] == ["processed"] * 4 + ["dead_lettered"]
    assert Delivery.objects.get(event=events[-1]).last_error.startswith(
        "follow-up events would be 5 deep, over the cap of 4 (the route's max_depth);"
    )


def test_a_routes_depth_cap_of_zero_lets_its_deliveries_emit_nothing(
    routes: None, source: Source
) -> None:
    loop_route(max_depth=0)

    events = run_loop(source, steps=5)

    assert [(e.depth, e.status) for e in events] == [(0, "dead_lettered")]


def test_a_depth_cap_lowered_on_the_route_applies_from_the_next_attempt(
    settings: Any, routes: None, source: Source
) -> None:
    # given a loop that has run its first step under the setting's cap of eight
    settings.SWITCHYARD_MAX_EMIT_DEPTH = 8
    publish(source=source, type=LOOP_TYPE, payload={"step": 0})
    first = Delivery.objects.get(handler="test.looper")
    assert execute(first.id).status == "succeeded"

    # when the route's cap is set to one while its follow-up waits
    loop_route(max_depth=1)
    follow_up = Delivery.objects.get(handler="test.looper", status="pending")

    # then the follow-up's delivery, at depth 1, may not emit
    assert execute(follow_up.id).status == "dead_lettered"
    assert list(Event.objects.filter(type=LOOP_TYPE).values_list("depth", flat=True)) == [1, 0]


# --- the source's cap on deliveries per event -----------------------------------------------


def test_an_event_over_its_sources_delivery_cap_runs_the_first_routes_and_names_the_source(
    settings: Any, source: Source, wide_routes: list[Route]
) -> None:
    # given the setting allows fifty deliveries an event, the source one
    settings.SWITCHYARD_MAX_DELIVERIES_PER_EVENT = 50
    Source.objects.filter(id=source.id).update(max_deliveries_per_event=1)

    result = publish(source=source, type=WIDE_TYPE, payload={})

    reason = refused(3, 1, SOURCE_CAP)
    assert result.deliveries == 1
    assert deliveries_of(result.event) == [
        ("test.noop", "pending", "", ""),
        ("test.stamp", "dead_lettered", FANOUT_ERROR, reason),
        ("test.child", "dead_lettered", FANOUT_ERROR, reason),
    ]


def test_a_sources_delivery_cap_above_the_setting_runs_every_route(
    settings: Any, source: Source, wide_routes: list[Route]
) -> None:
    settings.SWITCHYARD_MAX_DELIVERIES_PER_EVENT = 1
    Source.objects.filter(id=source.id).update(max_deliveries_per_event=3)

    result = publish(source=source, type=WIDE_TYPE, payload={})

    assert result.deliveries == 3
    assert [status for _, status, _, _ in deliveries_of(result.event)] == ["pending"] * 3


def test_a_source_without_its_own_cap_uses_the_setting(
    settings: Any, source: Source, wide_routes: list[Route]
) -> None:
    settings.SWITCHYARD_MAX_DELIVERIES_PER_EVENT = 2
    other = Source.objects.create(slug="capped", kind="api", max_deliveries_per_event=1)

    result = publish(source=source, type=WIDE_TYPE, payload={})

    assert result.deliveries == 2
    assert deliveries_of(result.event)[2][3] == refused(3, 2, "SWITCHYARD_MAX_DELIVERIES_PER_EVENT")
    assert publish(source=other, type=WIDE_TYPE, payload={}).deliveries == 1


def test_a_cap_edited_in_the_database_reaches_a_publisher_holding_an_old_source_in_the_memo(
    source: Source, wide_routes: list[Route], memo: Callable[[float], None]
) -> None:
    # given a publisher (a stream consumer, a folder watcher) keeping its Source for its life,
    # and one event published with no cap of the source's own
    assert publish(source=source, type=WIDE_TYPE, payload={}).deliveries == 3

    # when an operator sets the source's cap to one
    Source.objects.filter(id=source.id).update(max_deliveries_per_event=1)

    # then events published within the memo's seconds still run every route, and the next
    # ones, with the same old object, get the new cap
    memo(TTL - 0.1)
    assert publish(source=source, type=WIDE_TYPE, payload={}).deliveries == 3
    memo(0.2)
    later = publish(source=source, type=WIDE_TYPE, payload={})
    assert source.max_deliveries_per_event is None
    assert later.deliveries == 1
    assert deliveries_of(later.event)[1][3] == refused(3, 1, SOURCE_CAP)


def test_an_event_with_one_route_does_not_look_up_its_sources_cap(
    source: Source, wide_routes: list[Route]
) -> None:
    # given only one route left for the type (a cap is at least 1: it cannot refuse it)
    Route.objects.filter(name__in=["wide 2", "wide 3"]).delete()
    Source.objects.filter(id=source.id).update(max_deliveries_per_event=1)

    with CaptureQueriesContext(connection) as queries:
        result = publish(source=source, type=WIDE_TYPE, payload={})

    assert result.deliveries == 1
    assert [q["sql"] for q in queries.captured_queries if '"events_source"' in q["sql"]] == []
