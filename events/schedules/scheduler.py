"""Beat's scheduler: django-celery-beat's DatabaseScheduler, plus what schedules need.

- Each ``events.schedule`` message carries the run time it stands for and when it was sent
  (headers ``switchyard_due`` / ``switchyard_sent``), so the task can recognise a stale tick
  and a duplicate one. Celery's own ``expires`` is left off those messages: an expired message
  would vanish without a trace, where the task records the tick as expired.
- Intervals run on a fixed grid (``timing.EpochInterval``), so every beat agrees on due times.
- Only the beat holding the Redis lock (``lock``) sends anything; a second beat waits.
- Beat's bookkeeping (last run, run count) is written after every tick as an UPDATE of those
  two columns: a lock-holder that takes over reads current values, and an admin edit made
  meanwhile is never written back over.

Edits in the admin reach beat the way django-celery-beat does it: ``PeriodicTasks.last_update``
changes, and beat reloads the schedule within ``CELERY_BEAT_MAX_LOOP_INTERVAL`` seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from celery.utils.log import get_logger
from django.conf import settings
from django.db import DatabaseError
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry
from redis import RedisError

from events import conf

from . import DUE_HEADER, SCHEDULE_TASK, SENT_HEADER
from .lock import BeatLock, lock_for
from .timing import due_time, on_grid

logger = get_logger(__name__)


class SwitchyardEntry(ModelEntry):
    def __init__(self, model: PeriodicTask, app: Any = None) -> None:
        super().__init__(model, app=app)
        # A plain interval runs on the epoch grid (timing.EpochInterval).
        self.schedule = on_grid(self.schedule, self.app)  # type: ignore[has-type]

    def save(self) -> None:
        # Only beat's two columns, and only while the schedule is enabled (disabling clears
        # the last run, and re-enabling must not find a stale one).
        PeriodicTask.objects.filter(pk=self.model.pk, enabled=True).update(
            last_run_at=self.model.last_run_at, total_run_count=self.model.total_run_count
        )


class SwitchyardScheduler(DatabaseScheduler):
    Entry = SwitchyardEntry

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Write the last run after every tick, not every three minutes (see the docstring).
        self.sync_every_tasks = 1
        self.lock_ttl = float(conf.BEAT_LOCK_TTL.get())
        self.lock: BeatLock | None = lock_for(
            self.app.conf.broker_url or "", ttl=self.lock_ttl, redis_url=settings.REDIS_URL
        )
        self.leading: bool | None = None
        if self.lock is None and not kwargs.get("lazy"):
            logger.warning(
                "beat: no Redis for the beat lock (the SQLite broker): run exactly one beat"
            )

    def tick(self, *args: Any, **kwargs: Any) -> float:
        # Renew well within the lease, however long the next due tick is away.
        renew_every = self.lock_ttl / 3
        if not self.hold_lock():
            return min(self.max_interval, renew_every)
        return min(float(super().tick(*args, **kwargs)), renew_every)

    def hold_lock(self) -> bool:
        if self.lock is None:
            return True
        try:
            held = self.lock.hold()
            holder = None if held else self.lock.holder()
        except RedisError as exc:
            logger.warning("beat: cannot reach Redis for the beat lock (%s); not sending", exc)
            held, holder = False, None
        if held and self.leading is not True:
            # Another beat may have sent ticks while this one waited: start from the rows.
            try:
                self.reload()
            except DatabaseError as exc:
                # Not leading yet: the next tick renews the lock and tries again; beat lives.
                logger.warning(
                    "beat: holds the beat lock but cannot read the schedules (%s); "
                    "not sending until it can",
                    exc,
                )
                return False
            logger.info("beat: holds the beat lock (%s); sending schedules", self.lock.token)
        elif not held and self.leading is not False:
            logger.warning(
                "beat: another beat holds the beat lock (%s); this one (%s) sends nothing "
                "until it is free",
                holder or "unknown",
                self.lock.token,
            )
        self.leading = held
        return held

    def reload(self) -> None:
        self.sync()
        self._schedule = self.all_as_schedule()
        # The heap is rebuilt from the fresh entries on the next tick. A pending "invalidated"
        # flag must go too: it would rebuild the heap once more from these entries after they
        # were sent, whose last run time beat does not update, and send them again.
        self._heap = None
        self._heap_invalidated = False

    def apply_async(
        self, entry: Any, producer: Any = None, advance: bool = True, **kwargs: Any
    ) -> Any:
        if entry.task == SCHEDULE_TASK:
            due = due_time(entry.schedule, entry.last_run_at)
            if advance:
                entry = self.reserve(entry)
                advance = False
            options = {key: value for key, value in entry.options.items() if key != "expires"}
            options["headers"] = {
                **(entry.options.get("headers") or {}),
                DUE_HEADER: due.isoformat(),
                SENT_HEADER: datetime.now(UTC).isoformat(),
            }
            entry.options = options
        return super().apply_async(entry, producer=producer, advance=advance, **kwargs)

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.lock is not None and self.leading:
                try:
                    self.lock.release()
                except RedisError as exc:
                    logger.warning("beat: could not release the beat lock: %s", exc)
