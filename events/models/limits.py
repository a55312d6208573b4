"""Named resources several handlers share (an API such as ``anthropic`` or ``github``), each
with a rate limit that holds across every worker (events.limits)."""

from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone


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
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(rate__isnull=True) | Q(rate__gt=0)) & Q(burst__gte=1),
                name="resource_rate_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name
