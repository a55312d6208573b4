"""API tokens. Only a digest is stored; a token made here is shown once."""

from __future__ import annotations

import secrets
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control

from ..models import ApiToken, Source
from ..tokens import DEFAULT_SOURCE, create_token

# Where a new token waits, in the operator's own session, for the one page that shows it.
SESSION_KEY = "switchyard.new-token.{}"
SCOPE_FIELDS = ("sources", "all_sources", "can_publish", "can_read")


class ApiTokenForm(forms.ModelForm):
    """The name and what the token may do: the api sources it publishes into and reads, and
    which of the two it may do."""

    sources = forms.MultipleChoiceField(
        choices=(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The api sources it may publish into and read events of.",
    )

    class Meta:
        model = ApiToken
        fields = ("name", *SCOPE_FIELDS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["sources"]
        assert isinstance(field, forms.MultipleChoiceField)
        slugs = set(Source.objects.filter(kind="api").values_list("slug", flat=True))
        slugs.add(DEFAULT_SOURCE)  # made on first use by POST /api/events
        slugs.update(self.instance.sources or ())
        field.choices = [(slug, slug) for slug in sorted(slugs)]
        if self.instance.pk is None:
            field.initial = [DEFAULT_SOURCE]

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        data = self.cleaned_data
        if not data.get("can_publish") and not data.get("can_read"):
            self.add_error("can_publish", "A token must be allowed to publish, read, or both.")
        if not data.get("sources") and not data.get("all_sources"):
            self.add_error("sources", "Tick at least one source, or all sources.")
        return cleaned


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
    """The form's answer redirects (so a refresh does not post it again) to a page that takes
    the token out of the session and shows it, once. It is kept nowhere else: not in a
    message, a log line or the history."""

    form = ApiTokenForm
    list_display = ("name", "prefix", "scope", "created_at", "last_used_at", "revoked_at")
    list_filter = (RevokedFilter,)
    search_fields = ("name", "prefix")
    actions = ("revoke",)
    exclude = ("digest",)
    change_form_template = "admin/events/change_form_with_tools.html"

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("name", *SCOPE_FIELDS)
        return ("name", *SCOPE_FIELDS, "prefix", "created_at", "last_used_at", "revoked_at")

    @admin.display(description="may")
    def scope(self, obj: ApiToken) -> str:
        where = "all sources" if obj.all_sources else ", ".join(obj.sources or ()) or "no source"
        return f"{' + '.join(obj.scopes) or 'nothing'} ({where})"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return ("prefix", "created_at", "last_used_at", "revoked_at")

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "created/<str:key>/",
                self.admin_site.admin_view(self.created_view),
                name="events_apitoken_created",
            ),
            path(
                "<int:pk>/revoke/",
                self.admin_site.admin_view(self.revoke_view),
                name="events_apitoken_revoke",
            ),
            *super().get_urls(),
        ]

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
            data = form.cleaned_data
            record, token = create_token(
                data["name"],
                sources=data["sources"],
                all_sources=data["all_sources"],
                scopes=[s for s in ("publish", "read") if data[f"can_{s}"]],
            )
            self.log_addition(request, record, [{"added": {}}])
        key = secrets.token_urlsafe(16)
        request.session[SESSION_KEY.format(key)] = {"id": record.pk, "token": token}
        return HttpResponseRedirect(reverse("admin:events_apitoken_created", args=[key]))

    def created_view(self, request: HttpRequest, key: str) -> HttpResponse:
        """Shows a new token once: the session gives it up on the first look."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        waiting: dict[str, Any] = request.session.pop(SESSION_KEY.format(key), None) or {}
        record = ApiToken.objects.filter(pk=waiting["id"]).first() if waiting else None
        if record is None:
            self.message_user(
                request,
                "That token was already shown; it cannot be shown again. "
                "If it was not copied, revoke it and add a new one.",
                messages.WARNING,
            )
            return HttpResponseRedirect(reverse("admin:events_apitoken_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "API token created",
            "record": record,
            "token": waiting["token"],
        }
        response = TemplateResponse(request, "admin/events/apitoken/created.html", context)
        patch_cache_control(response, no_store=True, private=True)
        return response

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        tools = []
        record = self.get_object(request, object_id)
        if (
            record is not None
            and record.revoked_at is None
            and self.has_change_permission(request, record)
        ):
            url = reverse("admin:events_apitoken_revoke", args=[record.pk])
            tools.append({"url": url, "label": "Revoke"})
        extra = {**(extra_context or {}), "post_tools": tools}
        return super().change_view(request, object_id, form_url, extra)

    def revoke_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """POST only: revoke one token, back to its page."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        record = ApiToken.objects.filter(pk=pk).first()
        if record is None or not self.has_change_permission(request, record):
            raise PermissionDenied
        if ApiToken.objects.filter(pk=pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        ):
            self.log_change(request, record, "Revoked.")
            self.message_user(request, f"Revoked the token {record.name}.", messages.SUCCESS)
        else:
            self.message_user(
                request, f"The token {record.name} was already revoked.", messages.WARNING
            )
        return HttpResponseRedirect(reverse("admin:events_apitoken_change", args=[pk]))

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        revoked = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {revoked} token(s).", messages.SUCCESS)
