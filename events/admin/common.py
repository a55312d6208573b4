"""Pieces the admin pages share: list filters, short text, id search, requeue reporting."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.db.models import Model, QuerySet, TextChoices
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from handlers import registry

from ..models import Delivery, Route
from ..recovery import requeue

# How many of the newest rows a filter looks at to offer its choices: enough to list what is
# going on, without a DISTINCT over a table of millions on every page load.
RECENT_ROWS = 2000


def truncate(text: str, length: int = 120) -> str:
    return Truncator(text).chars(length)


def parse_uuid(term: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(term.strip())
    except ValueError:
        return None


def pretty_json(value: Any) -> SafeString:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True))


def admin_link(obj: Model, text: str) -> SafeString:
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text)


def recent_values(queryset: QuerySet[Any], field: str, *, order_by: str) -> list[str]:
    """Distinct non-blank values of ``field`` among the newest rows of ``queryset``."""
    values = queryset.order_by(order_by).values_list(field, flat=True)[:RECENT_ROWS]
    return sorted({value for value in values if value})


def has_model_permission(request: HttpRequest, model: type[Model], action: str) -> bool:
    """The user's own model permission, for admins whose ``has_change_permission`` says no
    because rows change only through actions."""
    opts = model._meta
    return request.user.has_perm(f"{opts.app_label}.{get_permission_codename(action, opts)}")


class ChoicesFilter(admin.SimpleListFilter):
    """Filter on a field holding one of a ``TextChoices``' values."""

    # Not "choices": that is the method that renders the filter.
    options: type[TextChoices]
    field = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(value), str(label)) for value, label in self.options.choices]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value in self.options.values:
            return queryset.filter(**{self.field: value})
        return queryset


class ValuesFilter(admin.SimpleListFilter):
    """Filter on exact values of a text field; subclasses say which values to offer."""

    field: str

    def values(self, request: HttpRequest) -> Iterable[str]:
        raise NotImplementedError

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        values = set(self.values(request))
        current = self.value()
        if current:
            # Keep a value chosen from a bookmark listed even when it is no longer recent.
            values.add(current)
        return [(value, value) for value in sorted(values)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value:
            return queryset.filter(**{self.field: value})
        return queryset


class HandlerFilter(ValuesFilter):
    title = "handler"
    parameter_name = field = "handler"

    def values(self, request: HttpRequest) -> Iterable[str]:
        registered = {spec.name for spec in registry.all_handlers()}
        routed = set(Route.objects.values_list("handler", flat=True).distinct())
        return registered | routed


def requeue_and_report(
    model_admin: admin.ModelAdmin, request: HttpRequest, ids: Iterable[int], asked: int
) -> int:
    """Requeue what is still dead-lettered among ``ids``, log it, and tell the operator.

    ``requeue`` changes only rows that are still dead-lettered, so a double click or two
    operators at once requeue each delivery once; the rest are reported as skipped.
    """
    done = [delivery_id for delivery_id in ids if requeue([delivery_id])]
    for delivery in Delivery.objects.filter(pk__in=done):
        model_admin.log_change(request, delivery, "Requeued from the dead-letter state.")
    skipped = max(asked - len(done), 0)
    model_admin.message_user(
        request,
        f"Requeued {len(done)}, skipped {skipped} (already requeued or not dead-lettered).",
        messages.SUCCESS if done else messages.WARNING,
    )
    return len(done)
