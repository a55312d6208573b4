"""The ticks schedules sent, and what became of each (events.schedules.ticks): read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django_celery_beat.models import PeriodicTask

from ..models import ScheduleTick, TickStatus
from ..schedules import SCHEDULE_TASK
from .common import ChoicesFilter, ValuesFilter, event_cell, two_line_time
from .filters import TimeRangeFilter


class TickStatusFilter(ChoicesFilter):
    title = "status"
    parameter_name = "status"
    options = TickStatus


class TickScheduleFilter(ValuesFilter):
    title = "schedule"
    parameter_name = field = "name"

    def values(self, request: HttpRequest) -> list[str]:
        return list(PeriodicTask.objects.filter(task=SCHEDULE_TASK).values_list("name", flat=True))


@admin.register(ScheduleTick)
class ScheduleTickAdmin(admin.ModelAdmin):
    list_display = (
        "due",
        "schedule_name",
        "status",
        "lateness",
        "event_link",
        "detail",
    )
    list_filter = (TickStatusFilter, TickScheduleFilter, ("due_at", TimeRangeFilter))
    search_fields = ("name", "key")
    list_select_related = ("event", "schedule")
    show_full_result_count = False
    fields = (
        "name",
        "schedule",
        "status",
        "key",
        "due_at",
        "sent_at",
        "recorded_at",
        "lateness",
        "event_link",
        "detail",
        "message_id",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Written by the schedule task only.
        return False

    @admin.display(description="due", ordering="due_at")
    def due(self, obj: ScheduleTick) -> str | SafeString:
        return two_line_time(obj.due_at)

    @admin.display(description="schedule", ordering="name")
    def schedule_name(self, obj: ScheduleTick) -> str | SafeString:
        if obj.schedule is None or obj.schedule.task != SCHEDULE_TASK:
            return obj.name
        url = reverse("admin:events_schedule_change", args=[obj.schedule.pk])
        return format_html('<a href="{}">{}</a>', url, obj.name)

    @admin.display(description="late by")
    def lateness(self, obj: ScheduleTick) -> str:
        return f"{(obj.recorded_at - obj.due_at).total_seconds():.1f} s"

    @admin.display(description="event")
    def event_link(self, obj: ScheduleTick) -> str | SafeString:
        return event_cell(obj.event) if obj.event else "-"
