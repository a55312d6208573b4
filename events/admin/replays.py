"""Replay in the admin: a form choosing events (source, type, status, time), a dry run that
records a planned Replay with its figures, then a confirmation that starts it on a worker.
Replays themselves are read-only records of who replayed what."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from .. import conf
from ..models import EventStatus, Replay, ReplayStatus, Source
from ..replay import FilterError, Filters, dry_run, record, start
from ..replay.runner import enqueue, filters_of
from .common import two_line_time
from .pipeline import ReadOnlyAdmin
from .replay_fields import copies_url, estimate_text, figure_rows, figures_table

TIME_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local", "step": "1"})


class ReplayForm(forms.Form):
    source = forms.ModelChoiceField(
        Source.objects.order_by("slug"), to_field_name="slug", required=False, empty_label="any"
    )
    type = forms.CharField(
        required=False, max_length=200, help_text="An event type, or a prefix ending in * (shop.*)."
    )
    status = forms.ChoiceField(choices=[("", "any"), *EventStatus.choices], required=False)
    received_from = forms.DateTimeField(
        required=False,
        label="Received from",
        widget=TIME_INPUT,
        help_text=f"At or after; times in {settings.TIME_ZONE}.",
    )
    received_to = forms.DateTimeField(
        required=False,
        label="Received before",
        widget=TIME_INPUT,
        help_text="Empty: up to the dry run.",
    )

    def filters(self) -> Filters:
        data = self.cleaned_data
        return Filters(
            source=data["source"].slug if data.get("source") else "",
            type=(data.get("type") or "").strip(),
            status=data.get("status") or "",
            received_from=data.get("received_from"),
            received_to=data.get("received_to"),
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors:
            try:
                self.filters().check()
            except FilterError as error:
                raise forms.ValidationError(str(error)) from None
        return data


class ConfirmForm(forms.Form):
    confirm = forms.BooleanField(required=False)


@admin.register(Replay)
class ReplayAdmin(ReadOnlyAdmin):
    list_display = ("id", "created", "requested_by", "what", "planned_events", "done", "status")
    list_filter = ("status",)
    ordering = ("-created_at", "-id")
    change_list_template = "admin/events/replay/change_list.html"
    fieldsets = (
        (None, {"fields": ("requested_by", "created_at", "status", "error")}),
        ("What", {"fields": ("what", "source_slug", "type", "status_filter")}),
        ("Dry run", {"fields": ("planned_events", "figures", "estimate")}),
        ("Run", {"fields": ("started_at", "finished_at", "done", "copies")}),
    )
    readonly_fields = (
        "requested_by",
        "created_at",
        "status",
        "error",
        "what",
        "source_slug",
        "type",
        "status_filter",
        "planned_events",
        "figures",
        "estimate",
        "started_at",
        "finished_at",
        "done",
        "copies",
    )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_replay_permission(self, request: HttpRequest) -> bool:
        # The custom permission on Replay (its Meta), "Can replay events".
        return request.user.has_perm(f"{self.opts.app_label}.replay_events")

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("new/", view(self.new_view), name="events_replay_new"),
            path("<int:pk>/confirm/", view(self.confirm_view), name="events_replay_confirm"),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        extra = {**(extra_context or {}), "can_replay": self.has_replay_permission(request)}
        return super().changelist_view(request, extra)

    def page(self, request: HttpRequest, template: str, title: str, **context: Any) -> Any:
        return TemplateResponse(
            request,
            f"admin/events/replay/{template}",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": title,
                "threshold": conf.REPLAY_CONFIRM_ABOVE.get(),
                **context,
            },
        )

    def new_view(self, request: HttpRequest) -> HttpResponse:
        """The form (GET); its dry run (POST) records a planned replay and shows it."""
        if not self.has_replay_permission(request):
            raise PermissionDenied
        form = ReplayForm(request.POST if request.method == "POST" else None)
        if request.method != "POST" or not form.is_valid():
            return self.page(request, "new.html", "Replay events", form=form)
        filters = form.filters()
        replay = record(filters, dry_run(filters), by=request.user.get_username())
        return HttpResponseRedirect(reverse("admin:events_replay_confirm", args=[replay.pk]))

    def confirm_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """A planned replay's figures (GET); POST starts it, with the checkbox ticked when it
        is above SWITCHYARD_REPLAY_CONFIRM_ABOVE. A second click finds it started already."""
        if not self.has_replay_permission(request):
            raise PermissionDenied
        replay = get_object_or_404(Replay, pk=pk)
        if replay.status != ReplayStatus.PLANNED:
            self.message_user(request, f"{replay} is {replay.status} already.", messages.WARNING)
            return HttpResponseRedirect(reverse("admin:events_replay_change", args=[pk]))
        above = replay.planned_events > int(conf.REPLAY_CONFIRM_ABOVE.get())
        form = ConfirmForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            if above and not form.cleaned_data["confirm"]:
                form.add_error("confirm", f"Tick this to replay {replay.planned_events} events.")
            else:
                return self.start_replay(request, replay)
        return self.page(
            request,
            "confirm.html",
            f"Replay {replay.planned_events} events?",
            replay=replay,
            form=form,
            above=above,
            what=filters_of(replay).describe(),
            rows=figure_rows(replay),
            deliveries=sum((replay.planned_deliveries or {}).values()),
            estimate=estimate_text(replay),
        )

    def start_replay(self, request: HttpRequest, replay: Replay) -> HttpResponse:
        back = HttpResponseRedirect(reverse("admin:events_replay_change", args=[replay.pk]))
        if not replay.planned_events:
            self.message_user(request, "Nothing to replay: no event matches.", messages.WARNING)
            return back
        with transaction.atomic():
            if not start(replay.pk):
                self.message_user(request, f"{replay} was started already.", messages.WARNING)
                return back
            self.log_change(request, replay, f"Started: {filters_of(replay).describe()}.")
            transaction.on_commit(lambda: enqueue(replay.pk), robust=True)
        self.message_user(
            request,
            f"{replay} started: {replay.planned_events} events are being copied by a worker.",
            messages.SUCCESS,
        )
        return back

    @admin.display(description="created at", ordering="created_at")
    def created(self, obj: Replay) -> str | SafeString:
        return two_line_time(obj.created_at)

    @admin.display(description="events chosen by")
    def what(self, obj: Replay) -> str:
        return filters_of(obj).describe()

    @admin.display(description="copied (events / deliveries)")
    def done(self, obj: Replay) -> str:
        return f"{obj.events_done} / {obj.deliveries_done}"

    @admin.display(description="deliveries and estimate per handler")
    def figures(self, obj: Replay) -> SafeString:
        return figures_table(obj)

    @admin.display(description="estimate")
    def estimate(self, obj: Replay) -> str:
        return estimate_text(obj)

    @admin.display(description="copies")
    def copies(self, obj: Replay) -> SafeString:
        return format_html('<a href="{}">the events this replay made</a>', copies_url(obj))
