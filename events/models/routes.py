"""Routes: which events go to which handler, and the settings each delivery runs under
(retries and timing, fan-out caps, rate and concurrency limits, order per key)."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

# The deepest chain a cap may allow: a follow-up one deeper must still fit Event.depth, a
# PostgreSQL smallint (SWITCHYARD_MAX_EMIT_DEPTH has the same bound: events.conf).
MAX_DEPTH = 32766


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
    max_emits = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Follow-up events one delivery may emit; over it the delivery is "
        "dead-lettered and none is published. Empty: SWITCHYARD_MAX_EMITS_PER_DELIVERY.",
    )
    # Checked with max_emits when a delivery's result is recorded (events.fanout); the column
    # holds what Event.depth (a smallint) can reach, like SWITCHYARD_MAX_EMIT_DEPTH.
    max_depth = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(MAX_DEPTH)],
        help_text="How deep a chain of follow-ups this route's deliveries may extend; a "
        "delivery whose follow-ups would be deeper is dead-lettered and none is published. "
        "Empty: SWITCHYARD_MAX_EMIT_DEPTH.",
    )
    stale_after = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Seconds after which an event not yet handled is skipped as stale.",
    )
    # Flow control (events.limits): a token bucket shared by every worker, this route's own
    # and one per named Resource its handler uses; a delivery over a limit is deferred.
    rate_limit = models.FloatField(
        null=True,
        blank=True,
        help_text="Deliveries started a second, across all workers. Empty: none.",
    )
    rate_burst = models.PositiveIntegerField(
        default=1,
        validators=[MinValueValidator(1)],
        help_text="Starts allowed at once above the rate (the bucket's size).",
    )
    resources = models.JSONField(
        default=list,
        blank=True,
        help_text='Named resources whose limits apply too, e.g. ["anthropic"].',
    )
    # Flow control (events.transitions.flow), decided inside the claim's transaction.
    max_concurrency = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Deliveries running at once, across all workers. Empty: no cap.",
    )
    ordered_by_key = models.BooleanField(
        default=False,
        help_text="Run deliveries with the same partition key one at a time, in receipt order.",
    )
    on_dead_letter = models.CharField(
        max_length=8,
        choices=[("block", "block the key"), ("skip", "skip it")],
        default="block",
        help_text="Ordered routes: whether a dead letter holds its key's later deliveries "
        "until it is requeued or resolved, or is skipped.",
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
            models.CheckConstraint(
                condition=(Q(rate_limit__isnull=True) | Q(rate_limit__gt=0)) & Q(rate_burst__gte=1),
                name="route_rate_limit_range",
            ),
            models.CheckConstraint(
                condition=Q(max_concurrency__isnull=True) | Q(max_concurrency__gte=1),
                name="route_concurrency_min",
            ),
            models.CheckConstraint(
                condition=Q(max_depth__isnull=True) | Q(max_depth__lte=MAX_DEPTH),
                name="route_max_depth_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def accepts_source(self, kind: str, slug: str) -> bool:
        """This route's own source rule (the handler's declaration is checked by routing)."""
        if not self.source_kinds and not self.source_slugs:
            return True
        return kind in (self.source_kinds or ()) or slug in (self.source_slugs or ())
