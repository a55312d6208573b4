"""Sources, routes and API tokens: the configuration operators edit."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from ..models import ApiToken, Route, Source
from ..tokens import create_token
from ..webhooks import get_kind
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
    readonly_fields = ("masked_secrets", "endpoint", "created_at", "updated_at")

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fields: tuple[str, ...] = ("slug", "kind", "enabled", "description", "settings")
        if obj is not None:
            fields += ("endpoint", "created_at", "updated_at")
        secret_fields: tuple[str, ...] = ("new_secret", "drop_old_secrets")
        if obj is not None:
            secret_fields = ("masked_secrets", *secret_fields)
        return ((None, {"fields": fields}), ("Signing secrets", {"fields": secret_fields}))

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
    def endpoint(self, obj: Source) -> str:
        if get_kind(obj.kind) is None:
            return "-"
        return reverse("hook", args=[obj.slug])

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
    list_display = (
        "name",
        "event_type",
        "handler",
        "enabled",
        "managed",
        "max_attempts",
        "time_limit",
        "queue",
    )
    list_editable = ("enabled",)
    list_filter = ("enabled", "managed", "handler")
    search_fields = ("name", "event_type", "handler")
    readonly_fields = ("managed", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "event_type", "payload_filter", "handler", "enabled")}),
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
        ("History", {"fields": ("managed", "created_at", "updated_at")}),
    )


class RevokedFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "active"), ("revoked", "revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Only a digest is stored. A token made here is shown once, on the page that answers the
    form, and kept nowhere else (not in a message, a session or the history)."""

    list_display = ("name", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = (RevokedFilter,)
    search_fields = ("name", "prefix")
    actions = ("revoke",)
    exclude = ("digest",)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("name",)
        return ("name", "prefix", "created_at", "last_used_at", "revoked_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return ("prefix", "created_at", "last_used_at", "revoked_at")

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        if request.method != "POST":
            return super().add_view(request, form_url, extra_context)
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = self.get_form(request)(request.POST)
        if not form.is_valid():
            # The standard page, with the errors next to the field.
            return super().add_view(request, form_url, extra_context)
        with transaction.atomic():
            record, token = create_token(form.cleaned_data["name"])
            self.log_addition(request, record, [{"added": {}}])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "API token created",
            "record": record,
            "token": token,
        }
        return TemplateResponse(request, "admin/events/apitoken/created.html", context)

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        revoked = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {revoked} token(s).", messages.SUCCESS)
