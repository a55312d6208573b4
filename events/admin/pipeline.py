"""Events and deliveries: read-only records, changed only through actions.

These tables grow without bound, so the lists avoid full counts and facet counts, filter on
indexed columns and fetch related rows in the same query.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from ..models import Attempt, Delivery, DeliveryStatus, Event, EventStatus
from .common import (
    ChoicesFilter,
    HandlerFilter,
    ValuesFilter,
    admin_link,
    has_model_permission,
    parse_uuid,
    pretty_json,
    recent_values,
    requeue_and_report,
    truncate,
)

# --- Filters -------------------------------------------------------------------------------


class EventStatusFilter(ChoicesFilter):
    title = "status"
    parameter_name = "status"
    options = EventStatus


class EventTypeFilter(ValuesFilter):
    title = "type"
    parameter_name = field = "type"

    def values(self, request: HttpRequest) -> list[str]:
        return recent_values(Event.objects.all(), "type", order_by="-received_at")


class DeliveryStatusFilter(ChoicesFilter):
    title = "status"
    parameter_name = "status"
    options = DeliveryStatus


class ErrorClassFilter(ValuesFilter):
    """The kind of error, among deliveries that recently failed or were skipped."""

    title = "error class"
    parameter_name = field = "error_class"
    statuses: tuple[str, ...] = (
        DeliveryStatus.RETRYING,
        DeliveryStatus.DEAD_LETTERED,
        DeliveryStatus.SKIPPED,
    )

    def values(self, request: HttpRequest) -> list[str]:
        failed = Delivery.objects.filter(status__in=self.statuses)
        return recent_values(failed, "error_class", order_by="-created_at")


# --- Inlines -------------------------------------------------------------------------------


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
        "next_attempt_at",
        "error_class",
        "short_error",
    )
    ordering = ("handler",)

    @admin.display(description="handler")
    def delivery(self, obj: Delivery) -> SafeString:
        return admin_link(obj, obj.handler)

    @admin.display(description="last error")
    def short_error(self, obj: Delivery) -> str:
        return truncate(obj.last_error, 200)


class AttemptInline(ReadOnlyInline):
    model = Attempt
    fields = readonly_fields = (
        "number",
        "status",
        "started_at",
        "finished_at",
        "duration_ms",
        "worker",
        "error_class",
        "message",
        "retry_delay",
        "traceback_details",
    )

    @admin.display(description="error message")
    def message(self, obj: Attempt) -> str | SafeString:
        if len(obj.error_message) <= 200:
            return obj.error_message
        return format_html(
            "<details><summary>{}</summary><pre>{}</pre></details>",
            truncate(obj.error_message, 200),
            obj.error_message,
        )

    @admin.display(description="traceback")
    def traceback_details(self, obj: Attempt) -> str | SafeString:
        if not obj.traceback:
            return "-"
        return format_html("<details><summary>show</summary><pre>{}</pre></details>", obj.traceback)


# --- Events --------------------------------------------------------------------------------


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the pipeline. Operators look, and act through actions only."""

    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_requeue_permission(self, request: HttpRequest) -> bool:
        return has_model_permission(request, self.model, "change")


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("short_id", "type", "source", "status", "received_at", "delivery_count")
    list_filter = (EventStatusFilter, "source", EventTypeFilter)
    list_select_related = ("source",)
    raw_id_fields = ("source", "emitted_by")
    search_fields = ("external_id", "type")
    search_help_text = "Event id (full UUID), external id (exact) or type (prefix)."
    date_hierarchy = "received_at"
    ordering = ("-received_at",)
    inlines = (DeliveryInline,)
    actions = ("requeue_dead_letters",)
    fieldsets = (
        (None, {"fields": ("id", "type", "source", "status", "received_at", "status_changed_at")}),
        ("Identity", {"fields": ("external_id", "partition_key", "schema_version", "emitted_by")}),
        ("Payload", {"fields": ("payload_json",)}),
    )
    readonly_fields = (
        "id",
        "type",
        "source",
        "status",
        "received_at",
        "status_changed_at",
        "external_id",
        "partition_key",
        "schema_version",
        "emitted_by",
        "payload_json",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Event]:
        # A correlated count, evaluated only for the rows on the page (unlike a JOIN with
        # GROUP BY over the whole filtered table).
        count = (
            Delivery.objects.filter(event=OuterRef("pk"))
            .order_by()
            .values("event")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return super().get_queryset(request).annotate(delivery_count=Coalesce(Subquery(count), 0))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Event], search_term: str
    ) -> tuple[QuerySet[Event], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        event_id = parse_uuid(term)
        if event_id is not None:
            # Senders' ids are often UUIDs too.
            return queryset.filter(Q(id=event_id) | Q(external_id=term)), False
        return queryset.filter(Q(external_id=term) | Q(type__startswith=term)), False

    @admin.display(description="event", ordering="id")
    def short_id(self, obj: Event) -> str:
        return str(obj.id)[:8]

    @admin.display(description="deliveries")
    def delivery_count(self, obj: Any) -> int:
        return int(obj.delivery_count)

    @admin.display(description="payload")
    def payload_json(self, obj: Event) -> SafeString:
        return pretty_json(obj.payload)

    @admin.action(description="Requeue their dead-lettered deliveries", permissions=["requeue"])
    def requeue_dead_letters(self, request: HttpRequest, queryset: QuerySet[Event]) -> None:
        ids = list(
            Delivery.objects.filter(
                event__in=queryset, status=DeliveryStatus.DEAD_LETTERED
            ).values_list("id", flat=True)
        )
        requeue_and_report(self, request, ids, len(ids))

    def has_requeue_permission(self, request: HttpRequest) -> bool:
        return has_model_permission(request, Delivery, "change")


# --- Deliveries ----------------------------------------------------------------------------


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "event_link",
        "handler",
        "status",
        "attempt_counts",
        "next_attempt_at",
        "error_class",
        "created_at",
    )
    list_filter: ClassVar[tuple[Any, ...]] = (DeliveryStatusFilter, HandlerFilter, ErrorClassFilter)
    list_select_related = ("event",)
    raw_id_fields = ("event", "route")
    search_fields = ("handler",)
    search_help_text = "Delivery id, event id (full UUID) or handler."
    ordering = ("-created_at",)
    inlines = (AttemptInline,)
    actions = ("requeue_selected",)
    fieldsets = (
        (None, {"fields": ("event", "route", "handler", "status", "attempts", "total_attempts")}),
        (
            "Timing",
            {
                "fields": (
                    "created_at",
                    "next_attempt_at",
                    "enqueued_at",
                    "started_at",
                    "lease_expires_at",
                    "finished_at",
                    "updated_at",
                )
            },
        ),
        ("Result", {"fields": ("error_class", "last_error", "outcome_json")}),
    )
    readonly_fields = (
        "event",
        "route",
        "handler",
        "status",
        "attempts",
        "total_attempts",
        "created_at",
        "next_attempt_at",
        "enqueued_at",
        "started_at",
        "lease_expires_at",
        "finished_at",
        "updated_at",
        "error_class",
        "last_error",
        "outcome_json",
    )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # An event's status is derived from its deliveries; removing one behind the pipeline's
        # back would leave it wrong. Deleting the event removes its deliveries with it.
        return False

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Delivery], search_term: str
    ) -> tuple[QuerySet[Delivery], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        event_id = parse_uuid(term)
        if event_id is not None:
            return queryset.filter(event_id=event_id), False
        if term.isdigit():
            return queryset.filter(id=int(term)), False
        return queryset.filter(handler=term), False

    @admin.display(description="event", ordering="event__received_at")
    def event_link(self, obj: Delivery) -> SafeString:
        return admin_link(obj.event, f"{obj.event.type} {str(obj.event_id)[:8]}")

    @admin.display(description="attempts (cycle / total)")
    def attempt_counts(self, obj: Delivery) -> str:
        return f"{obj.attempts} / {obj.total_attempts}"

    @admin.display(description="outcome")
    def outcome_json(self, obj: Delivery) -> SafeString | str:
        return "-" if obj.outcome is None else pretty_json(obj.outcome)

    @admin.action(description="Requeue selected dead-lettered deliveries", permissions=["requeue"])
    def requeue_selected(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        ids = list(queryset.values_list("id", flat=True))
        # The dead-letter list only offers rows that are still dead-lettered; ticked rows that
        # were requeued meanwhile count as skipped rather than vanishing from the report.
        ticked = len(request.POST.getlist(ACTION_CHECKBOX_NAME))
        requeue_and_report(self, request, ids, max(len(ids), ticked))
