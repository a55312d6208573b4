"""Rejected requests: webhooks and API calls that were refused, kept for a short time so "why
did my webhook not arrive?" has an answer (events.request_log)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from .sources import Source


class RejectedRequest(models.Model):
    received_at = models.DateTimeField(default=timezone.now)
    endpoint = models.CharField(max_length=16, help_text="hooks or api")
    # The slug asked for: the source may not exist (404) or may be disabled.
    slug = models.CharField(max_length=64, blank=True, default="")
    source = models.ForeignKey(
        Source, null=True, blank=True, on_delete=models.SET_NULL, related_name="rejected_requests"
    )
    status = models.PositiveSmallIntegerField()
    reason = models.CharField(max_length=500)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=300, help_text="Without the query string.")
    # Header names and values as received, secrets removed (events.request_log).
    headers = models.JSONField(default=dict, blank=True)
    body_bytes = models.PositiveIntegerField(default=0)
    client = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = "rejected request"
        indexes = [
            models.Index(fields=["-received_at"], name="rejected_received"),
            models.Index(fields=["source", "-received_at"], name="rejected_source_received"),
        ]

    def __str__(self) -> str:
        return f"{self.status} {self.method} {self.path}"
