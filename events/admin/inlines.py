"""The rows shown inside an event's and a delivery's page: read-only, compact."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from ..models import Attempt, Delivery
from .common import (
    admin_link,
    breakable,
    next_attempt,
    short_class,
    truncate,
    truncated_with_title,
    two_line_time,
)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DeliveryInline(ReadOnlyInline):
    model = Delivery
    fields = readonly_fields = (
        "delivery",
        "status",
        "attempts",
        "total_attempts",
        "next_attempt",
        "error_kind",
        "short_error",
    )
    ordering = ("handler",)

    @admin.display(description="handler")
    def delivery(self, obj: Delivery) -> SafeString:
        return admin_link(obj, obj.handler)

    @admin.display(description="next attempt at")
    def next_attempt(self, obj: Delivery) -> str | SafeString:
        return next_attempt(obj)

    @admin.display(description="error class")
    def error_kind(self, obj: Delivery) -> str | SafeString:
        return short_class(obj.error_class)

    @admin.display(description="last error")
    def short_error(self, obj: Delivery) -> str | SafeString:
        return truncated_with_title(obj.last_error, 120)


class AttemptInline(ReadOnlyInline):
    model = Attempt
    fields = readonly_fields = (
        "number",
        "status",
        "started",
        "finished",
        "duration",
        "worker_name",
        "error_kind",
        "message",
        "retry_in",
        "traceback_details",
    )

    @admin.display(description="started at")
    def started(self, obj: Attempt) -> str | SafeString:
        return two_line_time(obj.started_at)

    @admin.display(description="finished at")
    def finished(self, obj: Attempt) -> str | SafeString:
        return two_line_time(obj.finished_at)

    @admin.display(description="worker")
    def worker_name(self, obj: Attempt) -> SafeString:
        return breakable(obj.worker)

    @admin.display(description="duration")
    def duration(self, obj: Attempt) -> str:
        return "-" if obj.duration_ms is None else f"{obj.duration_ms} ms"

    @admin.display(description="error class")
    def error_kind(self, obj: Attempt) -> str | SafeString:
        return short_class(obj.error_class)

    @admin.display(description="error message")
    def message(self, obj: Attempt) -> str | SafeString:
        if len(obj.error_message) <= 200:
            return obj.error_message
        return format_html(
            "<details><summary>{}</summary><pre>{}</pre></details>",
            truncate(obj.error_message, 200),
            obj.error_message,
        )

    @admin.display(description="retry delay")
    def retry_in(self, obj: Attempt) -> str:
        return "-" if obj.retry_delay is None else f"{obj.retry_delay:.1f} s"

    @admin.display(description="traceback")
    def traceback_details(self, obj: Attempt) -> str | SafeString:
        if not obj.traceback:
            return "-"
        return format_html("<details><summary>show</summary><pre>{}</pre></details>", obj.traceback)
