"""Named resources several handlers share (an API such as ``anthropic`` or ``github``), each
with a rate limit that holds across every worker (events.limits) and a circuit breaker
(events.breakers)."""

from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone


class BreakerMode(models.TextChoices):
    AUTO = "auto", "automatic"
    OPEN = "open", "forced open"
    CLOSED = "closed", "forced closed"


class Resource(models.Model):
    """A limit shared by every route that names it in its ``resources``."""

    name = models.SlugField(max_length=64, unique=True, help_text="e.g. anthropic, github.")
    rate = models.FloatField(
        null=True,
        blank=True,
        help_text="Deliveries using it started a second, across all workers. Empty: no limit.",
    )
    burst = models.PositiveIntegerField(
        default=1,
        validators=[MinValueValidator(1)],
        help_text="Starts allowed at once above the rate (the bucket's size).",
    )
    description = models.CharField(max_length=200, blank=True, default="")
    breaker_enabled = models.BooleanField(
        default=False,
        help_text="Pause deliveries using it while it keeps failing (events.breakers).",
    )
    breaker_threshold = models.PositiveIntegerField(
        default=5,
        validators=[MinValueValidator(1)],
        help_text="Transient failures within the window that open the breaker.",
    )
    breaker_window = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1)], help_text="Seconds."
    )
    breaker_cooldown = models.PositiveIntegerField(
        default=30,
        validators=[MinValueValidator(1)],
        help_text="Seconds the breaker stays open before one delivery probes the resource.",
    )
    breaker_mode = models.CharField(
        max_length=8,
        choices=BreakerMode.choices,
        default=BreakerMode.AUTO,
        help_text="An operator's override: forced open holds every delivery using it.",
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(rate__isnull=True) | Q(rate__gt=0)) & Q(burst__gte=1),
                name="resource_rate_range",
            ),
            models.CheckConstraint(
                condition=Q(breaker_threshold__gte=1)
                & Q(breaker_window__gte=1)
                & Q(breaker_cooldown__gte=1)
                & Q(breaker_mode__in=["auto", "open", "closed"]),
                name="resource_breaker_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name
