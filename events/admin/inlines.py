"""The rows shown inside an event's and a delivery's page: read-only, compact.

A delivery's attempts are numbered over its whole life; where an operator requeued it, the
first attempt after the requeue carries a mark (who, when), so a fresh set of attempts is told
from a retry. Tracebacks are listed below the attempts at the page's full width
(``traceback_list``), not squeezed into a column.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import display_for_value
from django.db.models import F, OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from ..models import Attempt, Delivery, Requeue
from .common import (
    LINE_BREAK,
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


def requeued_before(attempts: QuerySet[Attempt]) -> QuerySet[Attempt]:
    """``attempts`` with the requeue that came just before each, if one did (``requeued_at``,
    ``requeued_by``): a requeue after attempt n is marked on attempt n + 1."""
    latest = Requeue.objects.filter(
        delivery=OuterRef("delivery"), after_attempt=OuterRef("number") - 1
    ).order_by("-requeued_at")
    return attempts.annotate(
        requeued_at=Subquery(latest.values("requeued_at")[:1]),
        requeued_by=Subquery(latest.values("requeued_by")[:1]),
    )


def requeue_note(at: Any, by: str) -> str:
    when = display_for_value(at, "-")
    return f"requeued by {by} at {when}" if by else f"requeued at {when}"


def requeue_mark(attempt: Any) -> str | SafeString:
    at = getattr(attempt, "requeued_at", None)
    if at is None:
        return ""
    return format_html(
        '<br><span class="requeue-mark">{}</span>', requeue_note(at, attempt.requeued_by or "")
    )


def requeue_list(delivery: Delivery) -> str | SafeString:
    """Every requeue of ``delivery``, oldest first, and the attempt each one came after."""
    requeues = Requeue.objects.filter(delivery=delivery).order_by("requeued_at")
    return (
        format_html_join(
            LINE_BREAK,
            "{} (after attempt {})",
            ((requeue_note(r.requeued_at, r.requeued_by), r.after_attempt) for r in requeues),
        )
        or "-"
    )


def traceback_list(delivery_id: int) -> SafeString:
    """Each attempt's traceback, collapsed, newest first; anchored for the attempts' links."""
    attempts = (
        Attempt.objects.filter(delivery_id=delivery_id)
        .exclude(traceback="")
        .order_by(F("number").desc())
        .values_list("number", "error_class", "traceback")
    )
    return format_html_join(
        "",
        # The anchor inside the details: following a link to it opens them in Chromium.
        '<details class="traceback"><summary>attempt {}: {}</summary>'
        '<pre id="traceback-{}">{}</pre></details>',
        ((number, error_class or "error", number, text) for number, error_class, text in attempts),
    )


class AttemptInline(ReadOnlyInline):
    model = Attempt
    fields = readonly_fields = (
        "attempt",
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

    def get_queryset(self, request: HttpRequest) -> QuerySet[Attempt]:
        return requeued_before(super().get_queryset(request))

    @admin.display(description="attempt")
    def attempt(self, obj: Attempt) -> SafeString:
        return format_html("{}{}", obj.number, requeue_mark(obj))

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
        return format_html('<a href="#traceback-{}">below</a>', obj.number)
