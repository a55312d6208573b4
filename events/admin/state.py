"""Handlers' memory across events (``ctx.state``, events.state): one row per (handler,
partition key), newest first, found by handler or key; each document edited as JSON.

Saving an edit bumps the version, as a delivery's write does, so a run that read the old
version cannot write over the edit: its compare fails and it runs again on the operator's
state. The form carries the version it showed; if a delivery wrote since, the save is refused
and the page says so, rather than the operator's edit undoing that delivery's update.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from .. import conf
from ..models import HandlerState
from ..publish import PublishError, check_payload
from ..state import StateWrite, compact, write
from .common import HandlerFilter, two_line_time
from .filters import TimeRangeFilter


class StateJSONField(forms.JSONField):
    """Shown indented, keys sorted, so a document reads and edits as the list shows it."""

    def prepare_value(self, value: Any) -> str:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


class HandlerStateForm(forms.ModelForm):
    # The version the page showed; the save is refused if a delivery wrote since.
    shown_version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)

    class Meta:
        model = HandlerState
        fields = ("data",)
        field_classes = {"data": StateJSONField}
        widgets = {"data": forms.Textarea(attrs={"rows": 20, "cols": 90})}
        labels = {"data": "State"}
        help_texts = {"data": "A JSON object; the handler reads it as ctx.state on its next run."}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["shown_version"].initial = self.instance.version

    def clean_data(self) -> dict[str, Any]:
        data = self.cleaned_data["data"]
        if not isinstance(data, dict):
            raise ValidationError('State must be a JSON object, such as {"count": 1}.')
        try:
            check_payload(data)
        except PublishError as exc:
            raise ValidationError(str(exc).replace("payload ", "State ", 1)) from None
        size, limit = len(compact(data).encode()), conf.STATE_MAX_BYTES.get()
        if size > limit:
            raise ValidationError(
                f"This state is {size} bytes, over the limit of {limit} "
                "(SWITCHYARD_STATE_MAX_BYTES)."
            )
        return data

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        shown = cleaned.get("shown_version")
        # The admin's change view runs in a transaction: the lock holds until the save.
        current = (
            HandlerState.objects.select_for_update()
            .filter(pk=self.instance.pk)
            .values_list("version", flat=True)
            .first()
        )
        if shown is not None and current != shown:
            raise ValidationError(
                f"This state changed since the page was shown (version {shown}, now "
                f"{current}): a delivery or another operator wrote it. Reload the page and "
                "make the edit again on the current state."
            )
        return cleaned


@admin.register(HandlerState)
class HandlerStateAdmin(admin.ModelAdmin):
    form = HandlerStateForm
    list_display = ("handler", "key", "version", "size", "updated", "updated_by")
    list_filter = (HandlerFilter, ("updated_at", TimeRangeFilter))
    search_fields = ("handler", "partition_key")
    search_help_text = "Handler or partition key (part of either)."
    ordering = ("-updated_at", "-id")
    show_full_result_count = False
    list_per_page = 50
    fields = (
        "handler",
        "partition_key",
        "version",
        "updated_at",
        "updated_by",
        "size",
        "data",
        "shown_version",
    )
    readonly_fields = ("handler", "partition_key", "version", "updated_at", "updated_by", "size")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A handler's first write creates its row; there is nothing to add by hand.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Clearing is saving {}: the version keeps counting up, so a run holding an old
        # version can never match a row that was deleted and started again.
        return False

    def save_model(self, request: HttpRequest, obj: HandlerState, form: Any, change: bool) -> None:
        # The version shown was checked under the row's lock in the form's clean(): this wins.
        shown = form.cleaned_data["shown_version"]
        edit = StateWrite(obj.handler, obj.partition_key, form.cleaned_data["data"], shown)
        write(edit, None, edited_by=request.user.get_username())
        obj.refresh_from_db()

    @admin.display(description="partition key", ordering="partition_key")
    def key(self, obj: HandlerState) -> str | SafeString:
        if obj.partition_key:
            return obj.partition_key
        return format_html('<span class="quiet">{}</span>', "(no partition key)")

    @admin.display(description="size")
    def size(self, obj: HandlerState) -> str:
        return f"{len(compact(obj.data).encode()):,} bytes"

    @admin.display(description="updated", ordering="updated_at")
    def updated(self, obj: HandlerState) -> str | SafeString:
        return two_line_time(obj.updated_at)

    @admin.display(description="last written by")
    def updated_by(self, obj: HandlerState) -> str | SafeString:
        if obj.edited_by:
            return f"{obj.edited_by} (admin)"
        if obj.updated_by_delivery_id is not None:
            # By id, without loading the delivery: one query for the whole page.
            url = reverse("admin:events_delivery_change", args=[obj.updated_by_delivery_id])
            return format_html('<a href="{}">delivery {}</a>', url, obj.updated_by_delivery_id)
        return "-"
