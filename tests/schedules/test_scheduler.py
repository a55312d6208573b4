"""Beat's scheduler and lock, driven directly against the test database and the real Redis."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from agents_project.celery import app
from events.schedules.lock import BeatLock, lock_for
from events.schedules.scheduler import SwitchyardEntry, SwitchyardScheduler
from events.schedules.timing import EpochInterval, due_time
from tests.conftest import RedisServer, wait_until

from .conftest import make_schedule

pytestmark = pytest.mark.django_db

PARKED = "schedules-scheduler-test"


# Beat's sync closes old connections, which a test inside a transaction cannot survive.
@pytest.mark.django_db(transaction=True)
def test_a_tick_carries_its_due_time_and_no_celery_expiry(redis_server: RedisServer) -> None:
    # given a schedule every minute that last ran at 10:00:30, with an expiry
    last = datetime(2026, 3, 29, 10, 0, 30, tzinfo=UTC)
    task = make_schedule(
        "minutely", every=60, kwargs={"a": 1}, expire_seconds=5, queue=PARKED, last_run_at=last
    )
    client = redis_server.client()
    client.delete(PARKED)
    scheduler = SwitchyardScheduler(app=app)

    # when beat sends its tick
    scheduler.apply_async(scheduler.schedule["minutely"], advance=True)

    # then the message says which run time it stands for (on the minute grid) and carries no
    # Celery expiry (the task records late ticks as expired instead of letting them vanish)
    message = json.loads(client.lpop(PARKED))
    client.delete(PARKED)
    headers = message["headers"]
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert (headers["task"], headers["periodic_task_name"], args, kwargs) == (
        "events.schedule",
        "minutely",
        [],
        {"a": 1},
    )
    assert headers["switchyard_due"] == "2026-03-29T10:01:00+00:00"
    assert headers["expires"] is None
    # and beat's bookkeeping reached the row
    task.refresh_from_db()
    assert (task.total_run_count, task.last_run_at > last) == (1, True)


def test_beats_bookkeeping_never_overwrites_an_admin_edit() -> None:
    task = make_schedule("minutely", every=60, kwargs={"v": 1})
    entry = SwitchyardEntry(task, app=app)
    # an operator edits the schedule after beat loaded it
    type(task).objects.filter(pk=task.pk).update(kwargs='{"v": 2}', description="edited")

    entry.model.last_run_at = datetime(2026, 3, 29, 10, 0, tzinfo=UTC)
    entry.model.total_run_count = 7
    entry.save()

    task.refresh_from_db()
    assert (task.kwargs, task.description, task.total_run_count) == ('{"v": 2}', "edited", 7)
    assert task.last_run_at == datetime(2026, 3, 29, 10, 0, tzinfo=UTC)


def test_the_beat_lock_has_one_holder_until_it_lapses_or_is_released(
    redis_server: RedisServer,
) -> None:
    client = redis_server.client()
    first = BeatLock(client, ttl=0.5, key="test:beat-lock")
    second = BeatLock(client, ttl=0.5, key="test:beat-lock")

    assert (first.hold(), second.hold(), first.hold()) == (True, False, True)
    assert second.holder() == first.token
    # a holder that stops renewing loses the lock once the lease lapses
    wait_until(second.hold, timeout=5, interval=0.05, what="the lease to lapse")
    assert (first.hold(), first.release(), second.release()) == (False, False, True)
    assert first.hold() is True
    first.release()


def test_the_sqlite_broker_means_no_lock() -> None:
    assert lock_for("sqla+sqlite:///var/broker.sqlite3", ttl=30, redis_url="") is None


def test_on_rabbitmq_two_beats_share_one_lock_in_redis(redis_server: RedisServer) -> None:
    rabbit = "amqp://guest:guest@127.0.0.1:5672//"
    first = lock_for(rabbit, ttl=30, redis_url=redis_server.url)
    second = lock_for(rabbit, ttl=30, redis_url=redis_server.url)
    assert first is not None and second is not None

    assert (first.hold(), second.hold()) == (True, False)
    first.release()
    assert second.hold() is True
    second.release()


def test_an_interval_beat_reads_runs_on_the_epoch_grid() -> None:
    task = make_schedule("every-7", every=7)

    schedule = SwitchyardEntry(task, app=app).schedule

    # 2026-01-01T00:00:00Z is 1767225600 s after the epoch, a multiple of 7
    assert isinstance(schedule, EpochInterval)
    assert [
        due_time(schedule, datetime(2026, 1, 1, 0, 0, s, tzinfo=UTC)).isoformat() for s in (0, 6, 7)
    ] == ["2026-01-01T00:00:07+00:00", "2026-01-01T00:00:07+00:00", "2026-01-01T00:00:14+00:00"]


@pytest.mark.django_db(transaction=True)
def test_a_beat_that_takes_the_lock_while_the_database_is_down_waits_instead_of_dying(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import OperationalError

    scheduler = SwitchyardScheduler(app=app)
    assert scheduler.lock is not None
    real_reload = scheduler.reload

    def database_down() -> None:
        raise OperationalError("could not connect to server")

    try:
        monkeypatch.setattr(scheduler, "reload", database_down)
        # when it wins the lock but cannot read the schedules: no crash, nothing sent
        assert scheduler.hold_lock() is False
        assert scheduler.leading is not True
        # and once the database answers, the next tick leads
        monkeypatch.setattr(scheduler, "reload", real_reload)
        assert scheduler.hold_lock() is True
        assert scheduler.leading is True
    finally:
        scheduler.lock.release()
