"""Schedules (events.schedules): django-celery-beat periodic tasks that publish events, with
Switchyard's overlap policy and a record of every tick."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from .pipeline import Event


class Schedule(PeriodicTask):
    """A django-celery-beat periodic task that runs ``events.schedule``: each tick publishes a
    ``schedule.<name>`` event whose payload is the task's keyword arguments. The same rows as
    beat's "Periodic tasks", listed on their own in the admin with Switchyard's settings."""

    class Meta:
        proxy = True
        verbose_name = "schedule"


class OverlapPolicy(models.TextChoices):
    SKIP = "skip", "skip while the previous run is in flight"
    ALLOW = "allow", "allow overlapping runs"


class SchedulePolicy(models.Model):
    """Switchyard's setting for one schedule, kept beside beat's row (which has no room for
    it): what a tick does while an earlier run of the schedule is still in flight. No row
    means ``skip``."""

    periodic_task = models.OneToOneField(
        PeriodicTask, on_delete=models.CASCADE, primary_key=True, related_name="switchyard_policy"
    )
    overlap = models.CharField(
        max_length=8, choices=OverlapPolicy.choices, default=OverlapPolicy.SKIP
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "schedule policy"
        verbose_name_plural = "schedule policies"

    def __str__(self) -> str:
        return f"{self.periodic_task_id}: {self.overlap}"


class TickStatus(models.TextChoices):
    PUBLISHED = "published", "published"
    SKIPPED = "skipped", "skipped"
    EXPIRED = "expired", "expired"
    DUPLICATE = "duplicate", "duplicate"
    FAILED = "failed", "failed"


class ScheduleTick(models.Model):
    """One message beat sent for a schedule, and what became of it (events.schedules.ticks).

    ``key`` is the schedule's name and the tick's due time: the event's external id. Only one
    tick per key is anything but a duplicate, which the database enforces, so a second beat
    started by mistake, or a redelivered message, cannot run a tick twice.
    """

    schedule = models.ForeignKey(
        PeriodicTask,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="switchyard_ticks",
    )
    # Kept when the schedule is deleted or renamed.
    name = models.CharField(max_length=200)
    key = models.CharField(max_length=255)
    due_at = models.DateTimeField(help_text="The run time this tick stands for.")
    sent_at = models.DateTimeField(null=True, blank=True, help_text="When beat sent it.")
    recorded_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16, choices=TickStatus.choices)
    event = models.ForeignKey(
        Event, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    detail = models.CharField(max_length=500, blank=True, default="")
    message_id = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-recorded_at", "-id"]
        constraints = [
            # Also the index for the duplicate check in events.schedules.ticks.
            models.UniqueConstraint(
                fields=["key"],
                condition=~Q(status="duplicate"),
                name="scheduletick_one_per_key",
            ),
        ]
        indexes = [
            # The admin's list, newest first.
            models.Index(fields=["-recorded_at"], name="scheduletick_recorded"),
            # A schedule's recent ticks on its admin page.
            models.Index(fields=["name", "-due_at"], name="scheduletick_name_due"),
        ]

    def __str__(self) -> str:
        return f"{self.name} tick due {self.due_at:%Y-%m-%d %H:%M:%S} ({self.status})"
