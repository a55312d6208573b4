"""The request log (events.request_log): refused webhook and API requests, read-only, newest
first, by source and status; each with its headers (secrets removed) and reason."""

from __future__ import annotations

from django.contrib import admin
from django.utils.safestring import SafeString

from ..models import RejectedRequest
from .common import pretty_json, truncated_with_title, two_line_time
from .filters import TimeRangeFilter
from .pipeline import ReadOnlyAdmin


@admin.register(RejectedRequest)
class RejectedRequestAdmin(ReadOnlyAdmin):
    list_display = ("received", "status", "endpoint", "slug", "short_reason", "client")
    list_filter = ("status", "endpoint", "source", ("received_at", TimeRangeFilter))
    search_fields = ("slug", "reason")
    ordering = ("-received_at", "-id")
    fields = (
        "received_at",
        "endpoint",
        "slug",
        "source",
        "status",
        "reason",
        "method",
        "path",
        "client",
        "body_bytes",
        "headers_json",
    )
    readonly_fields = fields

    @admin.display(description="received", ordering="received_at")
    def received(self, obj: RejectedRequest) -> str | SafeString:
        return two_line_time(obj.received_at)

    @admin.display(description="reason")
    def short_reason(self, obj: RejectedRequest) -> str | SafeString:
        return truncated_with_title(obj.reason, 80)

    @admin.display(description="headers (secrets removed)")
    def headers_json(self, obj: RejectedRequest) -> str | SafeString:
        return pretty_json(obj.headers)
