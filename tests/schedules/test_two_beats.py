"""Two beats started by mistake still run each tick once: only the beat holding the Redis lock
sends, the other takes over when the holder dies, and a tick sent twice anyway (a lapsed lock,
a redelivered message) is recorded as a duplicate and runs nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from events.models import Event, ScheduleTick, TickStatus
from events.schedules import DUE_HEADER, SENT_HEADER
from events.schedules.tasks import run_schedule
from tests.conftest import Beat, Worker, wait_until

from .conftest import make_schedule, ticks

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SENDING = "Sending due task twins (events.schedule)"


def test_only_the_beat_holding_the_lock_sends_and_the_other_takes_over(
    roomy_worker: Worker, fast_beat: Callable[[str], Beat]
) -> None:
    # given a schedule every second and two beats
    make_schedule("twins", every=1)
    first = fast_beat("first")
    second = fast_beat("second")

    # when both run for a few ticks
    wait_until(
        lambda: "another beat holds the beat lock" in second.log(tail=None),
        timeout=20,
        what=f"the second beat to find the lock taken:\n{second.log()}",
    )
    both_running = datetime.now(UTC)

    def due_while_both_run() -> list[datetime]:
        return list(
            ScheduleTick.objects.filter(name="twins", due_at__gt=both_running).values_list(
                "due_at", flat=True
            )
        )

    wait_until(
        lambda: len(due_while_both_run()) >= 3,
        timeout=20,
        what=f"three ticks due while both beats run:\n{first.log()}",
    )
    assert first.process is not None and first.process.poll() is None
    assert second.process is not None and second.process.poll() is None

    # then each of those due times was sent once, by the first; the second waited for the lock
    due = due_while_both_run()
    assert len(due) == len(set(due))
    assert SENDING in first.log(tail=None)
    assert SENDING not in second.log(tail=None)

    # when the first beat dies without releasing the lock
    first.kill()
    died = datetime.now(UTC)

    # then the second takes over once the lease lapses, and keeps the schedule going
    wait_until(
        lambda: ScheduleTick.objects.filter(name="twins", sent_at__gt=died).count() >= 2,
        timeout=20,
        what=f"the second beat to take over:\n{second.log()}",
    )
    second.stop()
    assert "holds the beat lock" in second.log(tail=None)
    assert SENDING in second.log(tail=None)
    # and no run time ran twice: one event per published tick, nothing recorded twice
    published = ticks("twins", TickStatus.PUBLISHED)
    assert len({tick.due_at for tick in published}) == len(published)
    assert Event.objects.filter(type="schedule.twins").count() == len(published)


def test_the_same_tick_sent_twice_runs_once(roomy_worker: Worker) -> None:
    # given a schedule, and two messages for the same run time (what two beats without the
    # lock would send)
    make_schedule("doubled", every=3600, kwargs={"n": 1})
    due = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    for _ in range(2):
        run_schedule.apply_async(
            kwargs={"n": 1},
            headers={
                "periodic_task_name": "doubled",
                DUE_HEADER: due.isoformat(),
                SENT_HEADER: datetime.now(UTC).isoformat(),
            },
        )

    # then one is published and the other recorded as its duplicate
    wait_until(lambda: len(ticks("doubled")) == 2, timeout=20, what="both messages")
    statuses = sorted(tick.status for tick in ticks("doubled"))
    assert statuses == [TickStatus.DUPLICATE, TickStatus.PUBLISHED]
    event = Event.objects.get(type="schedule.doubled")
    assert (event.external_id, event.payload) == (f"doubled@{due.isoformat()}", {"n": 1})
    assert [tick.event_id for tick in ticks("doubled")] == [event.id, event.id]
