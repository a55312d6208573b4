"""manage.py replay_events: the dry run's figures, the threshold, the copies and their
deliveries, the originals left alone, a re-run after an interruption, and the record kept."""

from __future__ import annotations

import getpass
import re
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from events.models import Delivery, Event, Replay, ReplayStatus, Route

from .conftest import Jobs, snapshot

# Each batch of a replay is its own transaction, committed (and its deliveries sent) as in
# production; an interrupted batch is rolled back.
pytestmark = pytest.mark.django_db(transaction=True)


def replay_events(*args: str) -> str:
    out = StringIO()
    call_command("replay_events", *args, stdout=out)
    return out.getvalue()


def test_dry_run_prints_the_events_deliveries_and_the_agents_estimate(
    originals: dict[str, Event], enqueued: list[Jobs]
) -> None:
    # when
    out = replay_events("--source", "crm", "--type", "*", "--dry-run")

    # then
    assert out.splitlines() == [
        "replay: 4 events (source crm, type *)",
        "deliveries: 6, from the routes enabled now",
        "  test.http_agent: 1",
        "  test.notify: 2",
        "  test.rebook: 2",
        "  test.refund_agent: 1",
        "  test.http_agent: ~460 tokens, ~$0.0040 (460 tokens, $0.0040 a run over its last 2 runs)",
        "  test.refund_agent: no recent runs, no estimate",
        "estimate: ~460 tokens, ~$0.0040 (not counting test.refund_agent: no recent runs)",
    ]
    assert Event.objects.filter(replay_of__isnull=False).count() == 0
    assert Replay.objects.count() == 0
    assert enqueued == []


def test_above_the_threshold_it_refuses_without_yes(
    originals: dict[str, Event], enqueued: list[Jobs], settings: Any
) -> None:
    settings.SWITCHYARD_REPLAY_CONFIRM_ABOVE = 3

    with pytest.raises(CommandError) as refused:
        replay_events("--source", "crm")

    assert str(refused.value) == (
        "4 events is more than SWITCHYARD_REPLAY_CONFIRM_ABOVE (3): run again with --yes to "
        "replay them (or --dry-run to look)"
    )
    assert Event.objects.filter(replay_of__isnull=False).count() == 0
    assert Replay.objects.count() == 0

    replay_events("--source", "crm", "--yes")
    assert Event.objects.filter(replay_of__isnull=False).count() == 4


def test_copies_are_new_events_with_new_deliveries_and_the_originals_are_untouched(
    originals: dict[str, Event], enqueued: list[Jobs]
) -> None:
    # given
    before = {name: snapshot(event) for name, event in originals.items()}

    # when
    out = replay_events("--type", "scenario.reservation.*")

    # then
    replay = Replay.objects.get()
    assert out.splitlines()[-1] == f"replay {replay.pk}: done, 2 events copied, 4 deliveries"
    for name in ("first", "second"):
        original = originals[name]
        copy = Event.objects.get(replay_of=original)
        assert copy.pk != original.pk
        assert (copy.source_id, copy.type, copy.schema_version) == (
            original.source_id,
            original.type,
            original.schema_version,
        )
        assert (copy.payload, copy.partition_key) == (original.payload, original.partition_key)
        assert copy.external_id == f"replay:{replay.pk}:{original.pk}"
        assert copy.replay_id == replay.pk
        assert copy.received_at > original.received_at
        assert sorted(Delivery.objects.filter(event=copy).values_list("handler", "status")) == [
            ("test.notify", "pending"),
            ("test.rebook", "pending"),
        ]
    assert {name: snapshot(event) for name, event in originals.items()} == before
    sent = sorted(job[0] for jobs in enqueued for job in jobs)
    assert sent == sorted(
        Delivery.objects.filter(event__replay=replay).values_list("id", flat=True)
    )


def test_a_disabled_route_gets_no_delivery(
    originals: dict[str, Event], enqueued: list[Jobs]
) -> None:
    Route.objects.filter(handler="test.notify").update(enabled=False)

    out = replay_events("--type", "scenario.reservation.cancelled")

    assert "  test.notify" not in out
    assert "deliveries: 2, from the routes enabled now" in out
    handlers = Delivery.objects.filter(event__replay__isnull=False).values_list(
        "handler", flat=True
    )
    assert sorted(handlers) == ["test.rebook", "test.rebook"]


def test_the_replay_record_says_who_what_and_the_figures(
    originals: dict[str, Event], enqueued: list[Jobs]
) -> None:
    replay_events("--source", "crm", "--type", "agentrun.*", "--from", "2025-03-01T12:00Z")

    replay = Replay.objects.get()
    assert replay.requested_by == f"cli:{getpass.getuser()}"
    assert (replay.source_slug, replay.type, replay.status_filter) == ("crm", "agentrun.*", "")
    assert replay.received_from.isoformat() == "2025-03-01T12:00:00+00:00"
    assert replay.received_to is not None  # the dry run's time
    assert replay.planned_events == 2
    assert replay.planned_deliveries == {"test.http_agent": 1, "test.refund_agent": 1}
    assert replay.agent_averages == {
        "test.http_agent": {"runs": 2, "tokens": 460, "cost_usd": "0.004000"},
        "test.refund_agent": None,
    }
    assert (replay.estimated_tokens, str(replay.estimated_cost_usd)) == (460, "0.004000")
    assert (replay.status, replay.events_done, replay.deliveries_done) == (
        ReplayStatus.DONE,
        2,
        2,
    )
    assert replay.started_at is not None and replay.finished_at is not None


def test_an_interrupted_replay_run_again_copies_each_event_once(
    originals: dict[str, Event], enqueued: list[Jobs], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the third publish fails, with batches of two (the first batch is committed)
    from events.replay import runner as running

    real_publish = running.publish
    calls = {"n": 0}

    def failing_third(**kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise ConnectionError("database went away")
        return real_publish(**kwargs)

    monkeypatch.setattr(running, "publish", failing_third)
    with pytest.raises(ConnectionError):
        replay_events("--source", "crm", "--batch", "2")
    replay = Replay.objects.get()
    assert (replay.status, replay.events_done, replay.deliveries_done) == ("failed", 2, 4)
    assert "database went away" in replay.error
    sent_first = [job[0] for jobs in enqueued for job in jobs]
    assert len(sent_first) == 4

    # when: it is run again, with publish working
    monkeypatch.setattr(running, "publish", real_publish)
    out = replay_events("--resume", str(replay.pk), "--batch", "2")

    # then: every original has one copy, and no delivery was made or sent twice
    assert f"replay {replay.pk}: resumed" in out
    replay.refresh_from_db()
    assert (replay.status, replay.events_done, replay.deliveries_done) == ("done", 4, 6)
    for original in originals.values():
        assert Event.objects.filter(replay_of=original).count() == 1
    sent = [job[0] for jobs in enqueued for job in jobs]
    assert len(sent) == len(set(sent)) == 6

    # and a finished replay is not resumed
    with pytest.raises(CommandError, match="is done: nothing to resume"):
        replay_events("--resume", str(replay.pk))
    with pytest.raises(CommandError, match="leave out --type --dry-run"):
        replay_events("--resume", str(replay.pk), "--type", "x", "--dry-run")


def test_copies_are_never_chosen_by_a_later_replay(
    originals: dict[str, Event], enqueued: list[Jobs]
) -> None:
    replay_events("--type", "scenario.reservation.cancelled")

    out = replay_events("--type", "scenario.reservation.cancelled", "--dry-run")

    assert out.splitlines()[0] == "replay: 2 events (type scenario.reservation.cancelled)"
    # nor once their originals are pruned (replay_of is cleared then)
    Event.objects.filter(replay__isnull=False).update(replay_of=None)
    out = replay_events("--type", "scenario.reservation.cancelled", "--dry-run")
    assert out.splitlines()[0] == "replay: 2 events (type scenario.reservation.cancelled)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--status", "lost"], "status 'lost' is not one of received, processing, failed"),
        (["--type", "a*b"], "type must be a type, or a prefix ending in * (github.*)"),
        (["--from", "yesterday"], "--from 'yesterday' is not a date or an ISO date and time"),
        (["--from", "2025-03-02", "--to", "2025-03-01"], "from must be before to"),
    ],
)
def test_bad_filters_are_refused_with_the_reason(
    originals: dict[str, Event], args: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=re.escape(message)):
        replay_events(*args)
    assert Replay.objects.count() == 0
