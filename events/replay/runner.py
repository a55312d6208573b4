"""Running a replay: each chosen event published again through publish() as a new event, in
batches of one transaction each, so today's enabled routes, their retry policy, queues and
limits apply as they do to any new event.

A copy's external id is ``replay:<replay id>:<original event id>``, unique within its source,
so a replay that was interrupted (a killed command or worker) is run again from the start and
publishes only what it had not: the copies already stored are duplicates and do no new work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict

from celery import current_app
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .. import conf
from ..models import Delivery, Event, Replay, ReplayStatus
from ..publish import PublishError, publish
from .plan import CHUNK, Filters, Plan, chosen

log = logging.getLogger("switchyard.pipeline")

BATCH = CHUNK
# The task the admin sends a confirmed replay to (declared in events.tasks), on the
# maintenance queue, which at least one worker consumes.
REPLAY_TASK = "events.replay"


def external_id(replay: Replay, original: Event) -> str:
    return f"replay:{replay.pk}:{original.pk}"


def filters_of(replay: Replay) -> Filters:
    return Filters(
        source=replay.source_slug,
        type=replay.type,
        status=replay.status_filter,
        received_from=replay.received_from,
        received_to=replay.received_to,
        events=tuple(replay.event_ids or ()),
    )


def record(filters: Filters, plan: Plan, *, by: str) -> Replay:
    """Store a planned replay with its dry run. Without an upper time bound, the dry run's
    time becomes one, so events arriving after it are not replayed."""
    now = timezone.now()
    return Replay.objects.create(
        created_at=now,
        requested_by=by[:150],
        source_slug=filters.source,
        type=filters.type,
        status_filter=filters.status,
        received_from=filters.received_from,
        received_to=filters.received_to or plan.as_of,
        event_ids=list(filters.events),
        planned_events=plan.events,
        planned_deliveries=plan.deliveries,
        agent_averages={
            agent.handler: None
            if agent.cost is None
            else {**asdict(agent.cost), "cost_usd": str(agent.cost.cost_usd)}
            for agent in plan.agents
        },
        estimated_tokens=plan.estimated_tokens,
        estimated_cost_usd=plan.estimated_cost_usd,
    )


def start(replay_id: int, *, resume: bool = False) -> bool:
    """Mark a planned replay running; False if it was started already (a second click). With
    ``resume``, a replay that is running (its process was killed) or failed starts again too."""
    allowed = [ReplayStatus.PLANNED]
    if resume:
        allowed += [ReplayStatus.RUNNING, ReplayStatus.FAILED]
    won = Replay.objects.filter(id=replay_id, status__in=allowed).update(
        status=ReplayStatus.RUNNING, started_at=timezone.now(), finished_at=None, error=""
    )
    return bool(won)


def count(replay: Replay) -> Replay:
    """Store how many copies and deliveries exist, counted from the rows: right however many
    times, and by however many processes, the replay ran."""
    replay.events_done = Event.objects.filter(replay=replay).count()
    replay.deliveries_done = Delivery.objects.filter(event__replay=replay).count()
    Replay.objects.filter(id=replay.pk).update(
        events_done=replay.events_done, deliveries_done=replay.deliveries_done
    )
    return replay


def copy(replay: Replay, original: Event) -> None:
    publish(
        source=original.source,
        type=original.type,
        payload=original.payload,
        external_id=external_id(replay, original),
        partition_key=original.partition_key or None,
        schema_version=original.schema_version,
        replay_of=original,
        replay=replay,
    )


def run(
    replay: Replay,
    *,
    batch: int = BATCH,
    progress: Callable[[Replay], None] | None = None,
) -> Replay:
    """Publish a copy of every event the replay's filters choose, ``batch`` events per
    transaction (their deliveries are sent as each batch commits). The replay must be running
    (``start``). Returns it done, or failed with the error (which is raised again)."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    events = chosen(filters_of(replay)).select_related("source")
    after: Q | None = None
    refused: list[str] = []
    try:
        while True:
            page = events if after is None else events.filter(after)
            originals = list(page[:batch])
            if not originals:
                break
            with transaction.atomic():
                for original in originals:
                    try:
                        copy(replay, original)
                    except PublishError as error:
                        # Stored before today's checks: skipped, not retried for ever.
                        log.warning(
                            "replay %s: event %s refused: %s", replay.pk, original.pk, error
                        )
                        refused.append(f"{original.pk}: {error}")
            last = originals[-1]
            # Keyset pagination on (received_at, id), the order chosen() gives.
            after = Q(received_at__gt=last.received_at) | Q(
                received_at=last.received_at, id__gt=last.pk
            )
            count(replay)
            if progress is not None:
                progress(replay)
    except Exception as error:
        Replay.objects.filter(id=replay.pk).update(
            status=ReplayStatus.FAILED, finished_at=timezone.now(), error=repr(error)[:2000]
        )
        count(replay)
        log.exception("replay %s failed", replay.pk)
        raise
    now = timezone.now()
    note = f"{len(refused)} events not copied; the first: {refused[0]}" if refused else ""
    Replay.objects.filter(id=replay.pk).update(
        status=ReplayStatus.DONE, finished_at=now, error=note[:2000]
    )
    replay.status, replay.finished_at, replay.error = ReplayStatus.DONE, now, note
    count(replay)
    log.info(
        "replay %s by %s: %d events copied, %d deliveries",
        replay.pk,
        replay.requested_by,
        replay.events_done,
        replay.deliveries_done,
    )
    return replay


def enqueue(replay_id: int) -> bool:
    """Send a started replay to a worker. False (logged) when the broker cannot be reached: the
    replay stays running with nothing copied, and ``manage.py replay_events --resume`` runs it."""
    try:
        current_app.send_task(
            REPLAY_TASK, args=(replay_id,), queue=str(conf.MAINTENANCE_QUEUE.get())
        )
    except Exception:
        log.exception("could not send replay %s to a worker", replay_id)
        return False
    return True


def run_started(replay_id: int) -> Replay | None:
    """The worker's side: run the replay if it is running (a message sent again after a lost
    worker resumes it); anything else was finished, or never confirmed."""
    replay = Replay.objects.filter(id=replay_id, status=ReplayStatus.RUNNING).first()
    if replay is None:
        log.info("replay %s is not running: nothing to do", replay_id)
        return None
    return run(replay)
