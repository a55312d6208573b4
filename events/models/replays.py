"""Replays: stored events published again as new events (events.replay), with who asked, the
filters that chose them, the dry run's figures and how far the run got."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class ReplayStatus(models.TextChoices):
    PLANNED = "planned", "planned (dry run only)"
    RUNNING = "running", "running"
    DONE = "done", "done"
    FAILED = "failed", "failed"


class Replay(models.Model):
    """One replay. Its copies are Events with ``replay`` set to it and the external id
    ``replay:<this id>:<original event id>``, so running it again publishes nothing twice."""

    created_at = models.DateTimeField(default=timezone.now)
    # The admin user's name, or "cli:<os user>" for manage.py replay_events.
    requested_by = models.CharField(max_length=150)
    # The filters. Empty: any. ``type`` ending in "*" is a prefix.
    source_slug = models.CharField(max_length=64, blank=True, default="")
    type = models.CharField(max_length=200, blank=True, default="")
    status_filter = models.CharField(max_length=16, blank=True, default="")
    received_from = models.DateTimeField(null=True, blank=True)
    # Set to the dry run's time when none was given, so events arriving later are not taken.
    received_to = models.DateTimeField(null=True, blank=True)
    # The events ticked on the admin's events list, when the replay was asked for that way.
    event_ids = models.JSONField(default=list, blank=True)
    # The dry run: events chosen, deliveries per handler ({handler: n}), and per agent its
    # recent runs' averages ({handler: {"runs", "tokens", "cost_usd"}} or null: no recent runs).
    planned_events = models.PositiveIntegerField(default=0)
    planned_deliveries = models.JSONField(default=dict, blank=True)
    agent_averages = models.JSONField(default=dict, blank=True)
    estimated_tokens = models.PositiveBigIntegerField(null=True, blank=True)
    estimated_cost_usd = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    # What the run did so far: copies stored and their deliveries (counted from the rows).
    events_done = models.PositiveIntegerField(default=0)
    deliveries_done = models.PositiveIntegerField(default=0)
    status = models.CharField(
        max_length=16, choices=ReplayStatus.choices, default=ReplayStatus.PLANNED
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("replay_events", "Can replay events")]

    def __str__(self) -> str:
        return f"replay {self.pk}"
