"""Events and deliveries: read-only records, changed only through actions.

These tables grow without bound, so the lists avoid full counts and facet counts, filter on
indexed columns and fetch related rows in the same query.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.safestring import SafeString

from .. import extensions
from ..models import Delivery, DeliveryStatus, Event
from ..transitions.flow import describe as describe_flow
from .columns import ExtendedChangeList
from .common import (
    HandlerFilter,
    breakable,
    event_cell,
    has_model_permission,
    next_attempt,
    parse_uuid,
    pretty_json,
    requeue_and_report,
    short_class,
    short_id,
    two_line_time,
)
from .filters import (
    DeliveryStatusFilter,
    DueFilter,
    ErrorClassFilter,
    EventStatusFilter,
    EventTypeFilter,
    QueueFilter,
    TimeRangeFilter,
)
from .inlines import AttemptInline, DeliveryInline, requeue_list, traceback_list
from .replay_fields import ReplayFilter, replay_copies, replay_selected, replayed_from
from .search import DELIVERY_HELP, EVENT_HELP, search_deliveries, search_events

# --- Events --------------------------------------------------------------------------------


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the pipeline. Operators look, and act through actions only."""

    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    # The standard page, plus a Requeue button when there is something to requeue.
    change_form_template = "admin/events/change_form_with_tools.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_requeue_permission(self, request: HttpRequest) -> bool:
        return has_model_permission(request, self.model, "change")

    def requeue_tool(self, request: HttpRequest, object_id: str) -> dict[str, str] | None:
        """The Requeue button's URL and label on ``object_id``'s page, if it has one."""
        return None

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        tool = (
            self.requeue_tool(request, object_id) if self.has_requeue_permission(request) else None
        )
        extra = {**(extra_context or {}), "post_tools": [tool] if tool else []}
        return super().change_view(request, object_id, form_url, extra)


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("short_id", "type", "source", "status", "received_at", "delivery_count")
    list_filter = (
        EventStatusFilter,
        "source",
        EventTypeFilter,
        ReplayFilter,
        ("received_at", TimeRangeFilter),
    )
    list_select_related = ("source",)
    raw_id_fields = ("source", "emitted_by")
    search_fields = ("external_id", "type")
    search_help_text = EVENT_HELP
    date_hierarchy = "received_at"
    ordering = ("-received_at",)
    inlines = (DeliveryInline,)
    actions = ("requeue_dead_letters", replay_selected)
    fieldsets = (
        (None, {"fields": ("id", "type", "source", "status", "received_at", "status_changed_at")}),
        (
            "Identity",
            {"fields": ("external_id", "partition_key", "schema_version", "emitted_by", "depth")},
        ),
        ("Replays", {"fields": ("replayed_from", "replay_copies")}),
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
        "depth",
        "replayed_from",
        "replay_copies",
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
        return search_events(queryset, term), False

    def get_urls(self) -> list[URLPattern]:
        requeue_url = path(
            "<uuid:pk>/requeue/",
            self.admin_site.admin_view(self.requeue_view),
            name="events_event_requeue",
        )
        return [requeue_url, *super().get_urls()]

    def requeue_tool(self, request: HttpRequest, object_id: str) -> dict[str, str] | None:
        event_id = parse_uuid(object_id)
        if event_id is None:
            return None
        dead = Delivery.objects.filter(event_id=event_id, status=DeliveryStatus.DEAD_LETTERED)
        count = dead.count()
        if not count:
            return None
        label = "Requeue its dead letter" if count == 1 else f"Requeue its {count} dead letters"
        return {"url": reverse("admin:events_event_requeue", args=[event_id]), "label": label}

    def requeue_view(self, request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
        """POST only: requeue the event's dead-lettered deliveries, back to its page."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_requeue_permission(request):
            raise PermissionDenied
        ids = list(
            Delivery.objects.filter(event_id=pk, status=DeliveryStatus.DEAD_LETTERED)
            .order_by("pk")
            .values_list("id", flat=True)
        )
        requeue_and_report(self, request, ids, len(ids))
        return HttpResponseRedirect(reverse("admin:events_event_change", args=[pk]))

    @admin.display(description="event", ordering="id")
    def short_id(self, obj: Event) -> str:
        return short_id(obj.id)

    @admin.display(description="deliveries")
    def delivery_count(self, obj: Any) -> int:
        return int(obj.delivery_count)

    @admin.display(description="payload")
    def payload_json(self, obj: Event) -> SafeString:
        return pretty_json(obj.payload)

    @admin.display(description="replayed from")
    def replayed_from(self, obj: Event) -> str | SafeString:
        return replayed_from(obj)

    @admin.display(description="its replays")
    def replay_copies(self, obj: Event) -> str | SafeString:
        return replay_copies(obj)

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

    def has_replay_permission(self, request: HttpRequest) -> bool:
        # The custom permission on Replay (its Meta), "Can replay events".
        return request.user.has_perm(f"{self.opts.app_label}.replay_events")


# --- Deliveries ----------------------------------------------------------------------------


DELIVERY_SUMMARY = ("event", "route", "handler", "status", "attempts", "total_attempts", "requeues")
DELIVERY_TIMING = (
    "created_at",
    "next_attempt",
    "enqueued_at",
    "started_at",
    "lease_expires_at",
    "finished_at",
    "updated_at",
)
# Waits a limit imposed (events.transitions.deferral): not attempts.
# ``flow``: held by the route's concurrency cap or key order, or blocking its key.
DELIVERY_DEFERRALS = ("deferrals", "deferred_until", "deferred_reason", "flow")


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display: tuple[str, ...] = (
        "id",
        "event_link",
        "handler_name",
        "status",
        "attempt_counts",
        "next_attempt",
        "error_kind",
        "created",
    )
    list_filter: ClassVar[tuple[Any, ...]] = (
        DeliveryStatusFilter,
        HandlerFilter,
        ErrorClassFilter,
        QueueFilter,
        DueFilter,
        ("created_at", TimeRangeFilter),
        ("finished_at", TimeRangeFilter),
    )
    list_select_related = ("event",)
    raw_id_fields = ("event", "route")
    search_fields = ("handler",)
    search_help_text = DELIVERY_HELP
    ordering = ("-created_at",)
    inlines = (AttemptInline,)
    actions = ("requeue_selected",)
    fieldsets = (
        (None, {"fields": DELIVERY_SUMMARY}),
        ("Timing", {"fields": DELIVERY_TIMING}),
        ("Deferred by limits", {"fields": DELIVERY_DEFERRALS}),
        ("Result", {"fields": ("error_class", "last_error", "outcome_json")}),
    )
    readonly_fields = (
        *DELIVERY_SUMMARY,
        *DELIVERY_TIMING,
        *DELIVERY_DEFERRALS,
        "error_class",
        "last_error",
        "outcome_json",
    )

    @admin.display(description="flow control")
    def flow(self, obj: Delivery) -> str:
        return describe_flow(obj) or "-"

    # What other apps add (events.extensions): list columns before "created", and panels
    # after the pipeline's fieldsets on a delivery's page.
    def get_list_display(self, request: HttpRequest) -> Any:
        added = [fn for group in extensions.delivery_columns() for fn in group.columns]
        *before, last = super().get_list_display(request)
        return (*before, *added, last)

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return ExtendedChangeList

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        # Django takes callables as read-only fields; the stubs know only names.
        fieldsets: list[Any] = list(super().get_fieldsets(request, obj))
        if obj is not None:
            fieldsets += [
                (panel.title, {"fields": panel.fields})
                for panel in extensions.delivery_panels()
                if panel.shown(obj)
            ]
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        added = [fn for panel in extensions.delivery_panels() for fn in panel.fields]
        return (*super().get_readonly_fields(request, obj), *added)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        extra = dict(extra_context or {})
        if object_id.isascii() and object_id.isdigit():
            extra["tracebacks"] = traceback_list(int(object_id))
        return super().change_view(request, object_id, form_url, extra)

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
        return search_deliveries(queryset, term), False

    def requeue_tool(self, request: HttpRequest, object_id: str) -> dict[str, str] | None:
        if not (object_id.isascii() and object_id.isdigit()):
            return None
        dead = Delivery.objects.filter(pk=int(object_id), status=DeliveryStatus.DEAD_LETTERED)
        if not dead.exists():
            return None
        return {
            "url": reverse("admin:events_deadletter_requeue", args=[int(object_id)]),
            "label": "Requeue",
        }

    @admin.display(description="event", ordering="event__received_at")
    def event_link(self, obj: Delivery) -> SafeString:
        return event_cell(obj.event)

    @admin.display(description="next attempt at", ordering="next_attempt_at")
    def next_attempt(self, obj: Delivery) -> str | SafeString:
        return next_attempt(obj)

    @admin.display(description="handler", ordering="handler")
    def handler_name(self, obj: Delivery) -> SafeString:
        return breakable(obj.handler)

    @admin.display(description="created at", ordering="created_at")
    def created(self, obj: Delivery) -> str | SafeString:
        return two_line_time(obj.created_at)

    @admin.display(description="error class", ordering="error_class")
    def error_kind(self, obj: Delivery) -> str | SafeString:
        return short_class(obj.error_class)

    @admin.display(description="attempts (cycle / total)")
    def attempt_counts(self, obj: Delivery) -> str:
        return f"{obj.attempts} / {obj.total_attempts}"

    @admin.display(description="requeued")
    def requeues(self, obj: Delivery) -> str | SafeString:
        return requeue_list(obj)

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
