"""What the pipeline looked like once a minute: the dead-letter depth and the backlog per
queue, so the dashboard can draw them over time. Written by the sweeper (events.samples), at
most one row a minute, and pruned by it after ``events.samples.KEEP``."""

from __future__ import annotations

from django.db import models


class PipelineSample(models.Model):
    # The minute the sample was taken in (seconds and below cut off): one row per minute.
    at = models.DateTimeField(unique=True)
    dead_letters = models.PositiveIntegerField()
    # Queue -> deliveries due and not yet running (events.metrics.backlog_by_queue).
    backlog = models.JSONField(default=dict)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"sample at {self.at:%Y-%m-%d %H:%M}"
