"""Retention (events.retention, manage.py prune_events): old final history goes, with what
hangs off it; in-flight events, dead letters (unless asked) and undecided approvals stay."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from events.models import (
    Attempt,
    Delivery,
    DeliveryStatus,
    Event,
    EventStatus,
    ScheduleTick,
    Source,
)
from events.retention import prune
from handlers.models import Approval, Step, ToolEffect

pytestmark = pytest.mark.django_db

NOW = timezone.now()
OLD = NOW - timedelta(days=40)
CUTOFF = NOW - timedelta(days=30)


@pytest.fixture
def source() -> Source:
    return Source.objects.create(slug="retention", kind="api")


def event(source: Source, name: str, status: str, *, old: bool = True) -> Event:
    return Event.objects.create(
        source=source,
        external_id=name,
        type="retention.test",
        payload={"name": name},
        status=status,
        received_at=OLD if old else NOW,
    )


def delivery(ev: Event, status: str = DeliveryStatus.SUCCEEDED) -> Delivery:
    return Delivery.objects.create(event=ev, handler="test.rebook", status=status)


@pytest.fixture
def history(source: Source) -> dict[str, Event]:
    made = {
        "processed": event(source, "processed", EventStatus.PROCESSED),
        "ignored": event(source, "ignored", EventStatus.IGNORED),
        "dead": event(source, "dead", EventStatus.DEAD_LETTERED),
        "retrying": event(source, "retrying", EventStatus.FAILED),
        "waiting": event(source, "waiting", EventStatus.PROCESSED),
        "recent": event(source, "recent", EventStatus.PROCESSED, old=False),
    }
    # the processed one has the whole tree: attempt, agent step, an executed approval, and a
    # newer follow-up event it emitted
    done = delivery(made["processed"])
    attempt = Attempt.objects.create(delivery=done, number=1, started_at=OLD)
    Step.objects.create(attempt=attempt, number=1, kind="llm", name="claude-sonnet-5-5")
    Approval.objects.create(
        delivery=done, agent="a", tool="t", input={}, idempotency_key="k1", status="executed"
    )
    follow_up = event(source, "follow-up", EventStatus.PROCESSED, old=False)
    Event.objects.filter(pk=follow_up.pk).update(emitted_by=done)
    made["follow-up"] = follow_up
    delivery(made["dead"], DeliveryStatus.DEAD_LETTERED)
    delivery(made["retrying"], DeliveryStatus.RETRYING)
    # an old, processed event whose approval still waits for a person
    Approval.objects.create(
        delivery=delivery(made["waiting"]),
        agent="a",
        tool="t",
        input={},
        idempotency_key="k2",
        status="pending",
    )
    for key, when in (("old", OLD), ("new", NOW)):
        ScheduleTick.objects.create(
            name="s", key=f"s@{key}", due_at=when, recorded_at=when, status="published"
        )
        ToolEffect.objects.create(key=f"effect-{key}", created_at=when)
    return made


def remaining() -> list[str]:
    return sorted(Event.objects.values_list("external_id", flat=True))


def test_prune_deletes_old_final_history_and_keeps_the_rest(history: dict[str, Event]) -> None:
    report = prune(CUTOFF)

    assert (report.events, report.schedule_ticks, report.others) == (2, 1, {"write-tool keys": 1})
    assert remaining() == ["dead", "follow-up", "recent", "retrying", "waiting"]
    # what hung off the processed event went with it
    assert not Attempt.objects.exists() and not Step.objects.exists()
    assert list(Approval.objects.values_list("status", flat=True)) == ["pending"]
    # the newer follow-up it emitted stays, no longer pointing at it
    assert Event.objects.get(external_id="follow-up").emitted_by is None
    assert list(ScheduleTick.objects.values_list("key", flat=True)) == ["s@new"]
    assert list(ToolEffect.objects.values_list("key", flat=True)) == ["effect-new"]


def test_dead_letters_go_only_when_asked(history: dict[str, Event]) -> None:
    prune(CUTOFF, include_dead_letters=True)
    assert remaining() == ["follow-up", "recent", "retrying", "waiting"]


def test_a_dry_run_counts_and_deletes_nothing(history: dict[str, Event]) -> None:
    before = remaining()
    report = prune(CUTOFF, dry_run=True)
    assert (report.events, report.schedule_ticks, report.others) == (2, 1, {"write-tool keys": 1})
    assert remaining() == before
    assert ScheduleTick.objects.count() == 2 and ToolEffect.objects.count() == 2


def test_batches_report_progress(history: dict[str, Event]) -> None:
    seen: list[int] = []
    prune(CUTOFF, batch=1, progress=lambda report: seen.append(report.events))
    assert seen == [1, 2]


def test_the_command_prints_progress_and_a_summary(history: dict[str, Event]) -> None:
    out = io.StringIO()
    call_command("prune_events", "--days", "30", stdout=out)
    text = out.getvalue()
    assert "prune: deleting events received before" in text
    assert "prune: deleted 2 events, 1 schedule ticks, 1 write-tool keys" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--days", "0"], "--days must be at least 1"), (["--days", "5", "--batch", "0"], "--batch")],
)
def test_the_command_refuses_bad_arguments(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("prune_events", *args)
