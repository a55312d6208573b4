"""What a replay chooses and estimates, and how it runs: the filters, payload filters counted
per event, the agents' recent runs (older ones and tool calls left out), a planned replay
started once, an event publish() refuses skipped and noted."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from events.models import Event, EventStatus, Replay, Route, Source
from events.replay import Filters, chosen, dry_run, record, run, start
from handlers.models import Step
from handlers.run_costs import RECENT_DAYS, recent_run_costs

from .conftest import T0, Jobs, agent_run, stored

pytestmark = pytest.mark.django_db


def names(filters: Filters) -> list[str]:
    return [event.external_id for event in chosen(filters)]


def test_filters_choose_by_source_type_or_prefix_status_and_time(
    originals: dict[str, Event],
) -> None:
    assert names(Filters(source="crm")) == ["orig-1", "orig-2", "orig-3", "orig-4"]
    assert names(Filters(source="past")) == ["run-1", "run-2"]
    assert names(Filters(type="agentrun.question")) == ["orig-3"]
    assert names(Filters(type="agentrun.*")) == ["orig-3", "orig-4"]
    assert names(Filters(status=EventStatus.DEAD_LETTERED)) == ["orig-2"]
    # from is inclusive, to exclusive
    window = Filters(received_from=T0 + timedelta(minutes=2), received_to=T0 + timedelta(minutes=4))
    assert names(window) == ["orig-2", "orig-3"]


def test_a_planned_replay_is_started_once(originals: dict[str, Event]) -> None:
    filters = Filters(source="crm")
    replay = record(filters, dry_run(filters), by="someone")

    assert start(replay.pk) is True
    assert start(replay.pk) is False
    # a replay left running by a killed process is started again only when resumed
    assert start(replay.pk, resume=True) is True
    assert Replay.objects.get().status == "running"


def test_agent_averages_leave_out_old_runs_and_answer_only_for_agents(
    originals: dict[str, Event],
) -> None:
    # given: a run older than the window, ten times dearer
    agent_run(3, "test.http_agent", (1000, 200), "0.0100")
    Step.objects.filter(attempt__delivery__event__external_id="run-3").update(
        created_at=timezone.now() - timedelta(days=RECENT_DAYS, minutes=1)
    )

    costs = recent_run_costs(["test.http_agent", "test.refund_agent", "test.rebook"])

    # then: test.rebook is no agent, test.refund_agent an agent without runs
    assert set(costs) == {"test.http_agent", "test.refund_agent"}
    http_agent = costs["test.http_agent"]
    assert http_agent is not None
    assert (http_agent.runs, http_agent.tokens, str(http_agent.cost_usd)) == (2, 460, "0.004000")
    assert costs["test.refund_agent"] is None


def test_a_route_with_a_payload_filter_is_counted_per_event(
    originals: dict[str, Event],
) -> None:
    Route.objects.filter(handler="test.rebook").update(payload_filter={"guest": "g1"})

    plan = dry_run(Filters(type="scenario.reservation.cancelled"))

    assert (plan.events, plan.deliveries) == (2, {"test.notify": 2, "test.rebook": 1})


def test_an_event_publish_refuses_is_skipped_and_noted(
    originals: dict[str, Event], enqueued: list[Jobs]
) -> None:
    # given: an event stored before today's type check
    bad = stored(Source.objects.get(slug="crm"), 9, "scenario.reservation.cancelled")
    Event.objects.filter(pk=bad.pk).update(type="bad type")
    filters = Filters(source="crm")
    replay = record(filters, dry_run(filters), by="someone")
    start(replay.pk)

    # when
    done = run(replay)

    # then
    assert (done.status, done.events_done) == ("done", 4)
    assert done.error.startswith(f"1 events not copied; the first: {bad.pk}: type must be")
    assert not Event.objects.filter(replay_of=bad).exists()


def test_pruning_an_original_keeps_its_copy(
    originals: dict[str, Event], enqueued: list[Jobs]
) -> None:
    from events.retention import prune

    filters = Filters(type="agentrun.question")
    replay = record(filters, dry_run(filters), by="someone")
    start(replay.pk)
    run(replay)
    Event.objects.filter(replay=replay).update(status=EventStatus.PROCESSED)

    prune(T0 + timedelta(minutes=3, seconds=1))

    copy = Event.objects.get(replay=replay)
    assert copy.replay_of_id is None
    assert not Event.objects.filter(pk=originals["question"].pk).exists()
