"""Events, deliveries and attempts: the pipeline's records (routes: events.models.routes).

Delivery states: pending -> running -> succeeded | retrying -> ... | dead_lettered | skipped.
An event's status is derived from its deliveries (see events.status). Every state change is a
conditional UPDATE, so two workers can never both win the same transition (events.transitions).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone

from .routes import Route
from .sources import Source


class EventStatus(models.TextChoices):
    RECEIVED = "received", "received"
    PROCESSING = "processing", "processing"
    FAILED = "failed", "failed (retrying)"
    DEAD_LETTERED = "dead_lettered", "dead-lettered"
    PROCESSED = "processed", "processed"
    IGNORED = "ignored", "ignored"


class Event(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="events")
    # The sender's id for this event: the dedupe key within a source.
    external_id = models.CharField(max_length=255)
    type = models.CharField(max_length=200)
    schema_version = models.PositiveIntegerField(default=1)
    partition_key = models.CharField(max_length=255, blank=True, default="")
    payload = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(
        max_length=16, choices=EventStatus.choices, default=EventStatus.RECEIVED
    )
    status_changed_at = models.DateTimeField(default=timezone.now)
    # Set on follow-up events: the delivery whose handler emitted this one.
    emitted_by = models.ForeignKey(
        "Delivery", null=True, blank=True, on_delete=models.SET_NULL, related_name="emitted"
    )
    # How many follow-ups deep: 0 for an event from outside, its emitter's depth + 1 for a
    # follow-up (set by publish(), checked against SWITCHYARD_MAX_EMIT_DEPTH: events.fanout).
    depth = models.PositiveSmallIntegerField(
        "follow-up depth",
        default=0,
        help_text="0 for an event from outside; a follow-up's is its emitter's + 1, at most "
        "SWITCHYARD_MAX_EMIT_DEPTH.",
    )
    # Set on a replay's copies (events.replay): the event copied, and the replay that did it.
    replay_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="replays",
        db_index=False,
    )
    replay = models.ForeignKey(
        "Replay",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="events",
        db_index=False,
    )

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="event_source_extid"),
        ]
        indexes = [
            # The admin's default list and its status filter.
            models.Index(fields=["status", "-received_at"], name="event_status_recv"),
            # The admin's default list, and the dashboard's counts by status over the last
            # hour and day and its events per minute (events.dashboard.figures), which read
            # the status from the index alone.
            models.Index(fields=["-received_at", "status"], name="event_recv_status"),
            models.Index(fields=["type", "-received_at"], name="event_type_recv"),
            # The admin's search by external id, across sources.
            models.Index(fields=["external_id"], name="event_extid"),
            # An ordered route's key: its earlier deliveries (events.transitions.flow._earlier
            # and wake), when the key has fewer events than the route has open deliveries.
            models.Index(
                fields=["partition_key", "received_at"],
                name="event_key_recv",
                condition=~Q(partition_key=""),
            ),
            # The event admin's list of an event's replays; few events are copies.
            models.Index(
                fields=["replay_of"], name="event_replay_of", condition=Q(replay_of__isnull=False)
            ),
            # events.replay counts a replay's copies; the admin lists them.
            models.Index(fields=["replay"], name="event_replay", condition=Q(replay__isnull=False)),
            # Its text search (events.admin.search) has pg_trgm indexes on PostgreSQL, made by
            # migration 0015_search and not declared here: SQLite has no GIN.
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "pending"
    RUNNING = "running", "running"
    RETRYING = "retrying", "retrying"
    SUCCEEDED = "succeeded", "succeeded"
    DEAD_LETTERED = "dead_lettered", "dead-lettered"
    SKIPPED = "skipped", "skipped"
    # A dead letter an operator closed without running it again (events.transitions.resolve).
    RESOLVED = "resolved", "resolved (not run)"


class DeliveryQuerySet(models.QuerySet["Delivery"]):
    def update(self, **kwargs: Any) -> int:
        # Every transition is a queryset update (a conditional UPDATE), which skips auto_now.
        kwargs.setdefault("updated_at", timezone.now())
        return super().update(**kwargs)


class Delivery(models.Model):
    """One (event, handler) pair: the unit of work, retried until it reaches a final state."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    route = models.ForeignKey(
        Route, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    handler = models.CharField(max_length=100)
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    # Attempts in the current cycle (reset by a requeue) and over the delivery's whole life
    # (numbers the Attempt rows and fences a stale worker's late write).
    attempts = models.PositiveIntegerField(default=0)
    total_attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    # The sweeper's re-sends since the delivery last ran, and when it may re-send again: it
    # backs off, so a queue nobody consumes does not fill Redis with copies.
    resends = models.PositiveIntegerField(default=0)
    resend_after = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # The worker process renewing the lease: boot id / PID namespace / pid / start time
    # (events.leases), so a worker on the same machine can tell the holder has exited.
    lease_holder = models.CharField(max_length=120, blank=True, default="")
    last_error = models.TextField(blank=True, default="")
    error_class = models.CharField(max_length=200, blank=True, default="")
    outcome = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Who closed a dead letter without running it (status resolved), and when.
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=150, blank=True, default="")
    # Deferrals by a limit (events.limits): not attempts. ``deferred_until`` is the start the
    # limit reserved for it (cleared by the claim); the reason names the limit.
    deferrals = models.PositiveIntegerField(default=0)
    deferred_until = models.DateTimeField(null=True, blank=True)
    deferred_reason = models.CharField(max_length=200, blank=True, default="")
    # Held by its route's flow control (events.transitions.flow) until woken: "concurrency"
    # or "key"; cleared by the claim.
    held_by = models.CharField(max_length=12, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event", "handler"], name="delivery_event_handler"),
        ]
        indexes = [
            # The sweeper: deliveries waiting for a message that may have been lost.
            models.Index(
                fields=["next_attempt_at"],
                name="delivery_waiting",
                condition=Q(status__in=["pending", "retrying"]),
            ),
            # The sweeper: running deliveries whose worker may have died.
            models.Index(
                fields=["lease_expires_at"],
                name="delivery_running",
                condition=Q(status="running"),
            ),
            # The admin's dead-letter list.
            models.Index(
                fields=["-finished_at"],
                name="delivery_dead",
                condition=Q(status="dead_lettered"),
            ),
            models.Index(fields=["status", "-created_at"], name="delivery_status_created"),
            # An ordered route's open deliveries (events.transitions.flow._earlier and wake):
            # the few not done yet, not the route's whole history.
            models.Index(
                fields=["route"],
                name="delivery_route_open",
                condition=Q(status__in=["pending", "retrying", "running", "dead_lettered"]),
            ),
            # The wake-up of a held delivery (events.transitions.flow.wake).
            models.Index(fields=["route", "id"], name="delivery_held", condition=~Q(held_by="")),
            # The admin's text search: pg_trgm indexes on PostgreSQL (migration 0015_search).
        ]

    def __str__(self) -> str:
        return f"{self.handler} for {self.event_id}"


class Requeue(models.Model):
    """A requeue of a dead-lettered delivery: who, when, and after which attempt, so its
    attempt history shows where a fresh set of attempts began (events.transitions.requeue)."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="requeues")
    # The delivery's total_attempts when it was requeued: the next attempt is this plus one.
    after_attempt = models.PositiveIntegerField()
    requeued_at = models.DateTimeField(default=timezone.now)
    requeued_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["delivery", "after_attempt", "requeued_at"]

    def __str__(self) -> str:
        return f"requeue of delivery {self.delivery_id} after attempt {self.after_attempt}"


class DeadLetter(Delivery):
    """Dead-lettered deliveries, as their own admin list."""

    class Meta:
        proxy = True
        verbose_name = "dead letter"
        verbose_name_plural = "dead letters"


class AttemptStatus(models.TextChoices):
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"
    LOST = "lost", "lost (worker gone)"


class Attempt(models.Model):
    """One run of a handler. Saved as running before the handler is called."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_set")
    number = models.PositiveIntegerField()
    status = models.CharField(
        max_length=16, choices=AttemptStatus.choices, default=AttemptStatus.RUNNING
    )
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    outcome = models.JSONField(null=True, blank=True)
    error_class = models.CharField(max_length=200, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")
    # Seconds the delivery was told to wait before the next attempt, when one was scheduled.
    retry_delay = models.FloatField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="attempt_delivery_number"),
        ]
        indexes = [
            # The dashboard's handler durations over the last hour (events.dashboard.figures).
            # On started_at, which never changes, so recording a result stays a HOT update.
            models.Index(fields=["started_at"], name="attempt_started"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}"
