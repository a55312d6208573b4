"""Rows the test handlers write, so tests can count runs and side effects."""

from django.db import models


class HandlerCall(models.Model):
    """One call of a test handler (every run, retries included)."""

    handler = models.CharField(max_length=100)
    event_id = models.CharField(max_length=64)
    attempt = models.PositiveIntegerField()
    at = models.DateTimeField(auto_now_add=True)


class SideEffect(models.Model):
    """An external effect keyed by ctx.idempotency_key: exactly one row per key."""

    key = models.CharField(max_length=200, unique=True)
    handler = models.CharField(max_length=100)
    at = models.DateTimeField(auto_now_add=True)
