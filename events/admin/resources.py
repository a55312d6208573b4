"""Named resources: each one's shared rate limit (events.limits) and circuit breaker
(events.breakers), with the breaker's live state and the operator's buttons (Open now, Close
now, Automatic) on its page."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils import timezone

from .. import breakers, extensions
from ..models import BreakerMode, Resource, Route
from .common import has_model_permission

# The buttons on a resource's page: (url segment, label, the mode it sets).
OVERRIDES = (
    ("open", "Open now", BreakerMode.OPEN),
    ("close", "Close now", BreakerMode.CLOSED),
    ("automatic", "Automatic", BreakerMode.AUTO),
)


def describe(resource: Resource) -> str:
    """The breaker's state in one line: "open since 10:42:03 UTC (until 10:42:33 UTC), 5
    failures in 30 s"."""
    breaker = breakers.of(resource)
    state = breakers.effective(breaker)
    if state.state == "closed":
        return f"closed ({state.failures} failures in the last {breaker.window} s)"
    if state.state in ("open", "half-open"):
        since = f" since {state.since:%H:%M:%S} UTC" if state.since else ""
        until = ""
        if state.state == "open" and state.until:
            until = f" (until {state.until:%H:%M:%S} UTC, then one probe)"
        elif state.state == "half-open":
            until = " (one delivery is probing)"
        return f"{state.state}{since}{until}, {state.failures} failures in {breaker.window} s"
    return state.state


@admin.register(Resource)
class ResourceAdmin(admin.ModelAdmin):
    """A rate limit and a circuit breaker shared by every route naming the resource."""

    list_display = (
        "name",
        "rate",
        "burst",
        "breaker_enabled",
        "breaker",
        "description",
        "routes",
        "updated_at",
    )
    list_editable = ("rate", "burst")
    search_fields = ("name", "description")
    readonly_fields = ("updated_at", "breaker")
    fieldsets = (
        (None, {"fields": ("name", "description", "updated_at")}),
        ("Rate limit", {"fields": ("rate", "burst")}),
        (
            "Circuit breaker",
            {
                "fields": (
                    "breaker",
                    "breaker_enabled",
                    "breaker_threshold",
                    "breaker_window",
                    "breaker_cooldown",
                    "breaker_mode",
                )
            },
        ),
    )
    change_form_template = "admin/events/change_form_with_tools.html"

    @admin.display(description="breaker now")
    def breaker(self, obj: Resource) -> str:
        return describe(obj) if obj is not None and obj.pk else "-"

    @admin.display(description="routes naming it")
    def routes(self, obj: Resource) -> int:
        # In Python: SQLite has no JSON containment, and routes are few.
        return sum(
            obj.name in (names or ()) for names in Route.objects.values_list("resources", flat=True)
        )

    def save_model(self, request: HttpRequest, obj: Resource, form: Any, change: bool) -> None:
        obj.updated_at = timezone.now()
        super().save_model(request, obj, form, change)

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<int:pk>/breaker/<str:action>/",
                self.admin_site.admin_view(self.override_view),
                name="events_resource_breaker",
            ),
            *super().get_urls(),
        ]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        tools = []
        record = self.get_object(request, object_id)
        if record is not None and self.has_change_permission(request, record):
            tools = [
                {
                    "url": reverse("admin:events_resource_breaker", args=[record.pk, action]),
                    "label": label,
                }
                for action, label, _ in OVERRIDES
            ]
        extra = {**(extra_context or {}), "post_tools": tools}
        return super().change_view(request, object_id, form_url, extra)

    def override_view(self, request: HttpRequest, pk: int, action: str) -> HttpResponse:
        """POST only: force the breaker open or closed, or back to automatic (closed, its
        failures forgotten). Running workers see it within their lookup memo's seconds."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        record = Resource.objects.filter(pk=pk).first()
        if record is None or not self.has_change_permission(request, record):
            raise PermissionDenied
        modes = {a: (label, mode) for a, label, mode in OVERRIDES}
        if action not in modes:
            raise PermissionDenied
        label, mode = modes[action]
        Resource.objects.filter(pk=pk).update(breaker_mode=mode, updated_at=timezone.now())
        if mode == BreakerMode.AUTO:
            breakers.reset(breakers.of(record))
        self.log_change(request, record, f"Circuit breaker: {label}.")
        self.message_user(
            request, f"Circuit breaker of {record.name}: {mode.label}.", messages.SUCCESS
        )
        return HttpResponseRedirect(reverse("admin:events_resource_change", args=[pk]))


def dashboard_context(request: HttpRequest, now: Any) -> dict[str, Any] | None:
    """The circuit breakers panel: each resource whose breaker is on or overridden, with its
    state (a Redis read each), linking to the resource's page; none when there is none."""
    if not has_model_permission(request, Resource, "view"):
        return None
    watched = Resource.objects.exclude(breaker_enabled=False, breaker_mode=BreakerMode.AUTO)
    rows = [
        {
            "name": resource.name,
            "state": describe(resource),
            "href": reverse("admin:events_resource_change", args=[resource.pk]),
        }
        for resource in watched.order_by("name")[:50]
    ]
    if not rows:
        return None  # no breaker on: no panel
    return {"rows": rows, "resources_url": reverse("admin:events_resource_changelist")}


extensions.add_dashboard_panel(
    extensions.DashboardPanel(
        "Circuit breakers", "admin/events/dashboard_breakers.html", dashboard_context
    )
)
