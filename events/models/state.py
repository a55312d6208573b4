"""Handlers' memory across events (``ctx.state``): one small JSON document per (handler,
partition key), read by a run and written with its outcome (events.state)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from .pipeline import Delivery


class HandlerState(models.Model):
    handler = models.CharField(max_length=100, help_text="The handler's name.")
    # The events' partition key this memory is for; "" for events without one.
    partition_key = models.CharField(max_length=255, blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    # Bumped by every write, a delivery's or an operator's: a run writes only if the version
    # is still the one it read (events.state.write), else it runs again on the fresh state.
    version = models.PositiveBigIntegerField(default=1)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by_delivery = models.ForeignKey(
        Delivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The operator whose admin edit is the latest write; "" when a delivery wrote last.
    edited_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        verbose_name = "handler state"
        verbose_name_plural = "handler state"
        ordering = ["-updated_at", "-id"]
        constraints = [
            # One document per (handler, key); also the conflict target of the first write's
            # INSERT ... ON CONFLICT DO NOTHING (events.state.write).
            models.UniqueConstraint(fields=["handler", "partition_key"], name="handler_state_key"),
            models.CheckConstraint(condition=Q(version__gte=1), name="handler_state_version"),
        ]
        indexes = [
            # The admin's list, newest first, and its time-range filter (events/admin/state.py).
            models.Index(fields=["-updated_at"], name="handler_state_updated"),
        ]

    def __str__(self) -> str:
        return f"{self.handler} / {self.partition_key or '(no partition key)'}"
