"""Sources, events, routes, deliveries and attempts.

Delivery states: pending -> running -> succeeded | retrying -> ... | dead_lettered | skipped.
An event's status is derived from its deliveries (see events.status). Every state change is a
conditional UPDATE, so two workers can never both win the same transition.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_celery_beat.models import PeriodicTask


class Source(models.Model):
    """Where events come from: a webhook sender, the API, a schedule, follow-ups from agents."""

    slug = models.SlugField(max_length=64, unique=True)
    kind = models.CharField(max_length=32, help_text="How requests are verified and parsed.")
    # Newest first. During a rotation the first two are accepted; never shown in full.
    secrets = models.JSONField(default=list, blank=True)
    settings = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


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

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="event_source_extid"),
        ]
        indexes = [
            # The admin's default list and its status filter.
            models.Index(fields=["status", "-received_at"], name="event_status_recv"),
            models.Index(fields=["-received_at"], name="event_recv"),
            models.Index(fields=["type", "-received_at"], name="event_type_recv"),
            # The admin's search by external id, across sources.
            models.Index(fields=["external_id"], name="event_extid"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class Route(models.Model):
    """Sends events whose type matches a glob (and payload a filter), from the sources it
    accepts, to a handler."""

    name = models.CharField(max_length=200, unique=True)
    event_type = models.CharField(
        max_length=200, help_text="Glob on the event type, e.g. github.pull_request.*"
    )
    payload_filter = models.JSONField(
        default=dict,
        blank=True,
        help_text='Optional. {"dotted.path": value or [values]}; every entry must match.',
    )
    # Neither set: events from any source. Either set: the event's source must be of one of
    # the kinds or one of the slugs. A handler's own @handler(sources=...) applies on top.
    source_kinds = models.JSONField(
        default=list,
        blank=True,
        help_text="Source kinds this route takes events from, e.g. github. Empty: any.",
    )
    source_slugs = models.JSONField(
        default=list,
        blank=True,
        help_text="Sources (by slug) this route takes events from. Empty: any.",
    )
    handler = models.CharField(max_length=100)
    enabled = models.BooleanField(default=True)
    managed = models.BooleanField(
        default=False, editable=False, help_text="Declared by a handler's @handler(on=...)."
    )
    max_attempts = models.PositiveSmallIntegerField(default=5, validators=[MinValueValidator(1)])
    backoff_base = models.FloatField(
        default=2.0, help_text="Seconds before the second attempt; doubles each time."
    )
    backoff_max = models.FloatField(default=600.0, help_text="Cap on one backoff, in seconds.")
    backoff_jitter = models.FloatField(
        default=0.25, help_text="Each delay is stretched by a random 0..jitter fraction."
    )
    time_limit = models.PositiveIntegerField(default=60, help_text="Seconds one attempt may run.")
    queue = models.CharField(max_length=64, default="default")
    stale_after = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Seconds after which an event not yet handled is skipped as stale.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(max_attempts__gte=1), name="route_attempts_min"),
            models.CheckConstraint(condition=Q(time_limit__gte=1), name="route_time_limit_min"),
            models.CheckConstraint(
                condition=Q(backoff_base__gte=0) & Q(backoff_max__gte=models.F("backoff_base")),
                name="route_backoff_range",
            ),
            models.CheckConstraint(
                condition=Q(backoff_jitter__gte=0) & Q(backoff_jitter__lte=1),
                name="route_jitter_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def accepts_source(self, kind: str, slug: str) -> bool:
        """This route's own source rule (the handler's declaration is checked by routing)."""
        if not self.source_kinds and not self.source_slugs:
            return True
        return kind in (self.source_kinds or ()) or slug in (self.source_slugs or ())


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "pending"
    RUNNING = "running", "running"
    RETRYING = "retrying", "retrying"
    SUCCEEDED = "succeeded", "succeeded"
    DEAD_LETTERED = "dead_lettered", "dead-lettered"
    SKIPPED = "skipped", "skipped"


FINAL_DELIVERY_STATES = (
    DeliveryStatus.SUCCEEDED,
    DeliveryStatus.DEAD_LETTERED,
    DeliveryStatus.SKIPPED,
)


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
        ]

    def __str__(self) -> str:
        return f"{self.handler} for {self.event_id}"


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

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}"


class StepKind(models.TextChoices):
    LLM = "llm", "LLM call"
    TOOL = "tool", "tool call"


class Step(models.Model):
    """One traced step of an agent's attempt: a model call or a tool call.

    Written as each step completes (events.traces.store_step), outside the transaction that
    records the attempt's result, so a run that dies midway still shows what it did and spent.
    """

    attempt = models.ForeignKey(Attempt, on_delete=models.CASCADE, related_name="step_set")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=8, choices=StepKind.choices)
    # The model for an LLM call ("offline" for the offline provider), the tool for a tool call.
    name = models.CharField(max_length=200)
    tool_kind = models.CharField(max_length=16, blank=True, default="")
    # A tool call's input; for an LLM call only a summary of the request, never the prompt.
    input = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cache_creation_tokens = models.PositiveIntegerField(default=0)
    cache_read_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    stop_reason = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["attempt", "number"]
        constraints = [
            models.UniqueConstraint(fields=["attempt", "number"], name="step_attempt_number"),
        ]
        indexes = [
            # The agent usage page: LLM calls of the last days, summed per handler and day.
            models.Index(fields=["created_at"], name="step_llm_created", condition=Q(kind="llm")),
        ]

    def __str__(self) -> str:
        return f"step {self.number} ({self.kind} {self.name}) of attempt {self.attempt_id}"


class AgentUsage(Step):
    """Per agent per day totals, as their own read-only admin page."""

    class Meta:
        proxy = True
        verbose_name = "agent usage"
        verbose_name_plural = "agent usage"


class AgentBudget(models.Model):
    """A daily budget for one agent handler: tokens (input + output) and/or cost of its LLM calls
    since local midnight (``TIME_ZONE``). Past it, its deliveries end with "budget exceeded"
    (events.budgets). No row, or a disabled one, means no daily limit."""

    handler = models.CharField(max_length=100, unique=True, help_text="The handler's name.")
    daily_token_limit = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="Input + output tokens per day; empty for no token limit.",
    )
    daily_cost_limit_usd = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
        help_text="USD per day; empty for no cost limit.",
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["handler"]
        verbose_name = "agent budget"

    def __str__(self) -> str:
        return self.handler


class ApiToken(models.Model):
    """A bearer token for the publish API. Only a digest is stored; the token is shown once."""

    name = models.CharField(max_length=100, unique=True)
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    # What the token may do: publish into the api sources it names, and, with can_read, read
    # the events of those sources back. Tokens made before scopes existed were migrated to
    # all_sources + both scopes, which is what they could do then (migration 0009).
    sources = models.JSONField(
        default=list,
        blank=True,
        help_text="The api sources (by slug) this token publishes into and reads events of.",
    )
    all_sources = models.BooleanField(
        default=False,
        help_text="Every api source, and reading events of every source (tokens made before "
        "scopes could do this).",
    )
    can_publish = models.BooleanField(default=True, help_text="May POST /api/events.")
    can_read = models.BooleanField(default=False, help_text="May GET /api/events/<id>.")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return self.name

    def covers(self, slug: str) -> bool:
        """Whether the token's sources include ``slug``."""
        return self.all_sources or slug in (self.sources or ())

    @property
    def scopes(self) -> list[str]:
        return [name for name, on in (("publish", self.can_publish), ("read", self.can_read)) if on]


class ApprovalStatus(models.TextChoices):
    PENDING = "pending", "pending"
    APPROVED = "approved", "approved (running)"
    EXECUTED = "executed", "executed"
    REJECTED = "rejected", "rejected"
    FAILED = "failed", "failed"


class Approval(models.Model):
    """A write an agent asked for that waits for a person (a tool marked requires_approval).

    Created by the run instead of acting (events.approvals.request). Approving it publishes an
    ``approval.approved`` event whose delivery performs the write once, with the idempotency key
    the run derived; rejecting it ends the matter and nothing runs.
    """

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="approvals")
    agent = models.CharField(max_length=100, help_text="The agent that asked.")
    tool = models.CharField(max_length=64)
    # The model's input for the tool, checked against its schema and made safe to store.
    input = models.JSONField()
    # Derived from the delivery, the tool and its input: the same request made again by a
    # retried run finds this row instead of creating another.
    idempotency_key = models.CharField(max_length=200, unique=True)
    status = models.CharField(
        max_length=16, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING
    )
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.CharField(max_length=150, blank=True, default="")
    reason = models.TextField(blank=True, default="", help_text="Why it was rejected or failed.")
    # The approval.approved event whose delivery performs the write.
    follow_up = models.ForeignKey(
        Event, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    executed_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["created_at"],
                name="approval_pending",
                condition=Q(status="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"approval {self.pk}: {self.agent} wants {self.tool}"


class AgentConfig(models.Model):
    """An operator's override for one agent handler: the model it calls. Read before each run
    (events.agent_models); no row, or an empty model, means the agent's own choice."""

    handler = models.CharField(max_length=100, unique=True, help_text="The handler's name.")
    model = models.CharField(
        max_length=100,
        blank=True,
        default="",
        help_text="Model for this agent's calls; empty for the agent's default.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["handler"]
        verbose_name = "agent model"

    def __str__(self) -> str:
        return self.handler


# --- Schedules (events.schedules) ------------------------------------------------------------


class Schedule(PeriodicTask):
    """A django-celery-beat periodic task that runs ``events.schedule``: each tick publishes a
    ``schedule.<name>`` event whose payload is the task's keyword arguments. The same rows as
    beat's "Periodic tasks", listed on their own in the admin with Switchyard's settings."""

    class Meta:
        proxy = True
        verbose_name = "schedule"


class OverlapPolicy(models.TextChoices):
    SKIP = "skip", "skip while the previous run is in flight"
    ALLOW = "allow", "allow overlapping runs"


class SchedulePolicy(models.Model):
    """Switchyard's setting for one schedule, kept beside beat's row (which has no room for
    it): what a tick does while an earlier run of the schedule is still in flight. No row
    means ``skip``."""

    periodic_task = models.OneToOneField(
        PeriodicTask, on_delete=models.CASCADE, primary_key=True, related_name="switchyard_policy"
    )
    overlap = models.CharField(
        max_length=8, choices=OverlapPolicy.choices, default=OverlapPolicy.SKIP
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "schedule policy"
        verbose_name_plural = "schedule policies"

    def __str__(self) -> str:
        return f"{self.periodic_task_id}: {self.overlap}"


class TickStatus(models.TextChoices):
    PUBLISHED = "published", "published"
    SKIPPED = "skipped", "skipped"
    EXPIRED = "expired", "expired"
    DUPLICATE = "duplicate", "duplicate"
    FAILED = "failed", "failed"


class ScheduleTick(models.Model):
    """One message beat sent for a schedule, and what became of it (events.schedules.ticks).

    ``key`` is the schedule's name and the tick's due time: the event's external id. Only one
    tick per key is anything but a duplicate, which the database enforces, so a second beat
    started by mistake, or a redelivered message, cannot run a tick twice.
    """

    schedule = models.ForeignKey(
        PeriodicTask,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="switchyard_ticks",
    )
    # Kept when the schedule is deleted or renamed.
    name = models.CharField(max_length=200)
    key = models.CharField(max_length=255)
    due_at = models.DateTimeField(help_text="The run time this tick stands for.")
    sent_at = models.DateTimeField(null=True, blank=True, help_text="When beat sent it.")
    recorded_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16, choices=TickStatus.choices)
    event = models.ForeignKey(
        Event, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    detail = models.CharField(max_length=500, blank=True, default="")
    message_id = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-recorded_at", "-id"]
        constraints = [
            # Also the index for the duplicate check in events.schedules.ticks.
            models.UniqueConstraint(
                fields=["key"],
                condition=~Q(status="duplicate"),
                name="scheduletick_one_per_key",
            ),
        ]
        indexes = [
            # The admin's list, newest first.
            models.Index(fields=["-recorded_at"], name="scheduletick_recorded"),
            # A schedule's recent ticks on its admin page.
            models.Index(fields=["name", "-due_at"], name="scheduletick_name_due"),
        ]

    def __str__(self) -> str:
        return f"{self.name} tick due {self.due_at:%Y-%m-%d %H:%M:%S} ({self.status})"
