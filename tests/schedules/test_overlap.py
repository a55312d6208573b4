"""Overlap policy with a real beat and a real worker: ``skip`` never lets two runs of a schedule
overlap and records the ticks it skipped; ``allow`` lets them overlap."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from events.models import Delivery, OverlapPolicy, Route, TickStatus
from tests.conftest import Beat, Worker, wait_until

from .conftest import count, events_of, make_schedule, ticks

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# test.slow sleeps this long on its first attempt: every run outlasts a one-second tick.
RUN_SECONDS = 2.0


def slow_route(name: str) -> Route:
    return Route.objects.create(
        name=f"{name} -> test.slow",
        event_type=f"schedule.{name}",
        handler="test.slow",
        queue="default",
        time_limit=30,
        max_attempts=1,
    )


def overlapping(name: str) -> bool:
    """Whether some run of the schedule started before the previous one had finished."""
    previous = None
    for event in events_of(name):
        delivery = Delivery.objects.get(event=event)
        if previous is not None and (
            previous.finished_at is None or event.received_at < previous.finished_at
        ):
            return True
        previous = delivery
    return False


def test_skip_records_ticks_while_a_run_is_in_flight_and_never_overlaps(
    roomy_worker: Worker, fast_beat: Callable[[str], Beat]
) -> None:
    # given two schedules every second whose runs take 2 s: one skips, one allows overlap
    for name, overlap in (("skipper", OverlapPolicy.SKIP), ("overlapper", OverlapPolicy.ALLOW)):
        make_schedule(name, every=1, kwargs={"sleep": RUN_SECONDS}, overlap=overlap)
        slow_route(name)

    # when beat runs until each has shown its behaviour
    beat = fast_beat("overlap")
    wait_until(
        lambda: count("skipper") >= 2 and count("skipper", TickStatus.SKIPPED) >= 1,
        timeout=40,
        what=f"two runs and a skipped tick of 'skipper'; beat log:\n{beat.log()}",
    )
    wait_until(lambda: overlapping("overlapper"), timeout=20, what="'overlapper' to overlap")
    beat.stop()
    wait_until(
        lambda: not Delivery.objects.filter(status__in=["pending", "running"]).exists(),
        timeout=30,
        what="the runs to finish",
    )

    # then no run of 'skipper' started before the previous one had finished
    assert not overlapping("skipper")
    # every skipped tick names a run of its own schedule that was in flight
    published = {str(tick.event_id) for tick in ticks("skipper", TickStatus.PUBLISHED)}
    skipped = ticks("skipper", TickStatus.SKIPPED)
    assert skipped
    for tick in skipped:
        assert tick.detail.startswith("the previous run is still in flight (event ")
        assert tick.detail.split("event ")[1].split(",")[0] in published
    # and 'allow' skipped nothing; no tick of either was sent twice
    assert count("overlapper", TickStatus.SKIPPED) == 0
    assert count("skipper", TickStatus.DUPLICATE) + count("overlapper", TickStatus.DUPLICATE) == 0
