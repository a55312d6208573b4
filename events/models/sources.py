"""Where events come from (Source) and who may publish through the API (ApiToken)."""

from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Source(models.Model):
    """Where events come from: a webhook sender, the API, a schedule, follow-ups from agents."""

    slug = models.SlugField(max_length=64, unique=True)
    kind = models.CharField(max_length=32, help_text="How requests are verified and parsed.")
    # Newest first. During a rotation the first two are accepted; never shown in full.
    secrets = models.JSONField(default=list, blank=True)
    settings = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    description = models.CharField(max_length=200, blank=True)
    # Read by publish() through a memo of a few seconds (events.fanout.deliveries_cap).
    max_deliveries_per_event = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Most deliveries one event from this source gets; the other matching "
        "routes' deliveries are stored dead-lettered. Empty: "
        "SWITCHYARD_MAX_DELIVERIES_PER_EVENT.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(
                condition=Q(max_deliveries_per_event__isnull=True)
                | Q(max_deliveries_per_event__gte=1),
                name="source_max_deliveries_min",
            ),
        ]

    def __str__(self) -> str:
        return self.slug


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
    can_read = models.BooleanField(
        default=False, help_text="May GET /api/events/{id}: read an event and its deliveries."
    )
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
