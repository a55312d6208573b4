"""What write tools remember so that a retried or re-delivered run does not act twice."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class ToolEffect(models.Model):
    """One side effect done under an idempotency key (handlers.effects.once)."""

    key = models.CharField(max_length=200, unique=True)
    result = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "tool effect"

    def __str__(self) -> str:
        return self.key
