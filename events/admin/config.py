"""Sources and routes: the configuration operators edit (API tokens: ``tokens``; resources,
with their rate limits and circuit breakers: ``resources``)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from events import conf
from handlers import registry

from ..models import RejectedRequest, Resource, Route, Source
from ..webhooks import get_kind
from .common import breakable
from .forms import RouteForm, SourceForm, mask_secret


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    form = SourceForm
    list_display = (
        "slug",
        "kind",
        "enabled",
        "secret_count",
        "masked_secrets",
        "description",
        "created_at",
    )
    list_filter = ("kind", "enabled")
    # Never the secrets: a search would let anyone with view access probe them.
    search_fields = ("slug", "description")
    actions = ("enable", "disable")
    readonly_fields = ("masked_secrets", "endpoint", "rejected", "created_at", "updated_at")

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fields: tuple[str, ...] = ("slug", "kind", "enabled", "description", "settings")
        if obj is not None:
            fields += ("endpoint", "rejected", "created_at", "updated_at")
        secret_fields: tuple[str, ...] = ("new_secret", "drop_old_secrets")
        if obj is not None:
            secret_fields = ("masked_secrets", *secret_fields)
        return (
            (None, {"fields": fields}),
            ("Signing secrets", {"fields": secret_fields}),
            (
                "Fan-out",
                {
                    "fields": ("max_deliveries_per_event",),
                    "description": "Edits reach every process publishing events within seconds.",
                },
            ),
        )

    @admin.display(description="secrets")
    def secret_count(self, obj: Source) -> int:
        return len(obj.secrets or [])

    @admin.display(description="current / previous")
    def masked_secrets(self, obj: Source) -> str:
        labels = ("current", "previous")
        return ", ".join(
            f"{mask_secret(secret)} ({label})"
            for secret, label in zip(obj.secrets or [], labels, strict=False)
        )

    @admin.display(description="endpoint")
    def endpoint(self, obj: Source) -> str | SafeString:
        """The URL senders post this source's webhooks to."""
        if get_kind(obj.kind) is None:
            return "-"
        url = conf.public_url() + reverse("hook", args=[obj.slug])
        return format_html("<code>{}</code>", url)

    @admin.display(description="rejected requests")
    def rejected(self, obj: Source) -> str | SafeString:
        """How many of its requests were refused in the request log's window, linked."""
        count = RejectedRequest.objects.filter(source=obj).count()
        if not count:
            return "none"
        url = reverse("admin:events_rejectedrequest_changelist") + f"?source__id__exact={obj.pk}"
        return format_html('<a href="{}">{} refused</a>', url, count)

    @admin.action(description="Enable selected sources", permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[Source]) -> None:
        changed = queryset.filter(enabled=False).update(enabled=True, updated_at=timezone.now())
        self.message_user(request, f"Enabled {changed} source(s).", messages.SUCCESS)

    @admin.action(description="Disable selected sources", permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet[Source]) -> None:
        changed = queryset.filter(enabled=True).update(enabled=False, updated_at=timezone.now())
        self.message_user(request, f"Disabled {changed} source(s).", messages.SUCCESS)


@admin.register(Route)
class RouteAdmin(admin.ModelAdmin):
    form = RouteForm
    # Without the name, which mostly repeats type and handler ("demo.rebook <- ..."): the
    # type is the link, and the list fits a 1400 px window with the sidebar open.
    list_display = (
        "pattern",
        "handler_name",
        "sources",
        "enabled",
        "managed",
        "max_attempts",
        "time_limit",
        "queue",
        "rate",
    )
    list_display_links = ("pattern",)
    list_editable = ("enabled",)
    list_filter = ("enabled", "managed", "handler")
    search_fields = ("name", "event_type", "handler")
    readonly_fields = (
        "managed",
        "handler_sources",
        "resource_limits",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("name", "event_type", "payload_filter", "handler", "enabled")}),
        ("Sources", {"fields": ("source_kinds", "source_slugs", "handler_sources")}),
        (
            "Retries and timing",
            {
                "fields": (
                    "max_attempts",
                    "backoff_base",
                    "backoff_max",
                    "backoff_jitter",
                    "time_limit",
                    "stale_after",
                    "queue",
                )
            },
        ),
        ("Fan-out", {"fields": ("max_emits", "max_depth")}),
        (
            "Rate limit",
            {
                "fields": ("rate_limit", "rate_burst", "resources", "resource_limits"),
                "description": "Shared by every worker; a delivery over a limit waits, "
                "without spending an attempt. Edits reach running workers within seconds.",
            },
        ),
        (
            "Concurrency and order",
            {
                "fields": ("max_concurrency", "ordered_by_key", "on_dead_letter"),
                "description": "Decided when a delivery is claimed, across every worker; a "
                "delivery that must wait is held without spending an attempt and started as "
                "soon as the way is free. Edits apply to the next claim.",
            },
        ),
        ("History", {"fields": ("managed", "created_at", "updated_at")}),
    )

    @admin.display(description="event type", ordering="event_type")
    def pattern(self, obj: Route) -> SafeString:
        return breakable(obj.event_type)

    @admin.display(description="handler", ordering="handler")
    def handler_name(self, obj: Route) -> SafeString:
        return breakable(obj.handler)

    @admin.display(description="sources")
    def sources(self, obj: Route) -> str:
        """What the route takes events from: its own rule, narrowed by its handler's."""
        own = [*(obj.source_kinds or ()), *(obj.source_slugs or ())]
        spec = registry.get(obj.handler)
        held = list(spec.sources) if spec is not None else []
        if own and held:
            return f"{', '.join(own)} (handler: {', '.join(held)} only)"
        return ", ".join(own or held) or "any"

    @admin.display(description="rate limit")
    def rate(self, obj: Route) -> str:
        own = f"{obj.rate_limit:g}/s" if obj.rate_limit is not None else ""
        return ", ".join([own, *(obj.resources or ())]) if own else ", ".join(obj.resources or ())

    @admin.display(description="resources' limits")
    def resource_limits(self, obj: Route) -> str:
        names = list(obj.resources or ()) if obj is not None else []
        if not names:
            return "none named"
        found = {r.name: r for r in Resource.objects.filter(name__in=names)}
        return "; ".join(
            f"{name}: {found[name].rate:g}/s, burst {found[name].burst}"
            if name in found and found[name].rate is not None
            else f"{name}: no limit set"
            for name in names
        )

    @admin.display(description="handler accepts")
    def handler_sources(self, obj: Route) -> str:
        spec = registry.get(obj.handler) if obj is not None and obj.handler else None
        if spec is None or not spec.sources:
            return "events from any source"
        return (
            f"only events from {', '.join(spec.sources)} sources, whatever this route says "
            "(declared by the handler)"
        )
