"""Pieces the admin pages share: list filters, short text, id search, requeue reporting."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import display_for_value
from django.contrib.auth import get_permission_codename
from django.db import connection
from django.db.models import CharField, Model, Q, QuerySet, TextChoices
from django.db.models.functions import Cast
from django.db.models.lookups import StartsWith
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

from handlers import registry

from ..models import Delivery, DeliveryStatus, Event, Route
from ..transitions import requeue

# How many of the newest rows a filter looks at to offer its choices: enough to list what is
# going on, without a DISTINCT over a table of millions on every page load.
RECENT_ROWS = 2000


# What the lists show of an id, and the shortest prefix a search looks up as an id.
SHORT_ID = 8
ID_PREFIX = re.compile(r"[0-9a-f]{8}[0-9a-f-]{0,28}")

# A separator format_html_join() keeps as it is (a plain string would be escaped).
LINE_BREAK = mark_safe("<br>")


def truncate(text: str, length: int = 120) -> str:
    return Truncator(text).chars(length)


def truncated_with_title(text: str, length: int) -> str | SafeString:
    """``text`` cut to ``length`` characters, the whole of it in a tooltip when cut."""
    if len(text) <= length:
        return text
    return format_html('<span title="{}">{}</span>', text, truncate(text, length))


def short_id(value: uuid.UUID | str) -> str:
    return str(value)[:SHORT_ID]


def id_prefix_q(field: str, term: str) -> Q | None:
    """A filter on a UUID field starting with ``term``, if ``term`` looks like the start of one
    (at least the eight hex digits the lists show).

    It casts the column to text, which no index serves: a scan, run only for such terms.
    """
    prefix = term.lower()
    if not ID_PREFIX.fullmatch(prefix):
        return None
    if connection.vendor != "postgresql":
        # Other databases store a UUID as 32 hex digits, without dashes.
        prefix = prefix.replace("-", "")
    return Q(StartsWith(Cast(field, CharField()), prefix))


def short_class(error_class: str) -> str | SafeString:
    """An exception's class name without its module, the full path in a tooltip."""
    if not error_class:
        return "-"
    name = error_class.rsplit(".", 1)[-1]
    if name == error_class:
        return name
    return format_html('<span title="{}">{}</span>', error_class, name)


def breakable(name: str) -> SafeString:
    """A dotted name that may wrap after its dots in a narrow column."""
    parts = re.split(r"(?<=\.)", name)
    return format_html("<wbr>".join(["{}"] * len(parts)), *parts)


def event_cell(event: Event) -> SafeString:
    """An event as its short id (a link to it, the full id in a tooltip) and its type."""
    url = reverse("admin:events_event_change", args=[event.pk])
    link = format_html('<a href="{}" title="{}">{}</a>', url, event.pk, short_id(event.pk))
    return format_html("{} {}", link, breakable(event.type))


def two_line_time(value: datetime | None) -> str | SafeString:
    """A time as the admin shows it, allowed to wrap between the date and the time only."""
    if value is None:
        return "-"
    day, _, rest = str(display_for_value(value, "-")).partition(" ")
    return format_html('<span class="nowrap">{}</span> <span class="nowrap">{}</span>', day, rest)


def next_attempt(delivery: Delivery) -> str | SafeString:
    """When the delivery runs next: only while it waits to run."""
    if delivery.status in (DeliveryStatus.PENDING, DeliveryStatus.RETRYING):
        return two_line_time(delivery.next_attempt_at)
    return "-"


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


def requeue_message(done: list[Delivery], skipped: int) -> str:
    """What a requeue did, naming the delivery when there was one."""
    if len(done) == 1:
        delivery = done[0]
        parts = [
            f"Requeued delivery {delivery.pk} ({delivery.handler} for event "
            f"{short_id(delivery.event_id)})."
        ]
    elif done:
        parts = [f"Requeued {len(done)} deliveries."]
    else:
        parts = ["Nothing was requeued."]
    if skipped == 1:
        parts.append("1 was no longer dead-lettered and was left alone.")
    elif skipped > 1:
        parts.append(f"{skipped} were no longer dead-lettered and were left alone.")
    return " ".join(parts)


def requeue_and_report(
    model_admin: admin.ModelAdmin, request: HttpRequest, ids: Iterable[int], asked: int
) -> int:
    """Requeue what is still dead-lettered among ``ids``, log it, and tell the operator.

    ``requeue`` changes only rows that are still dead-lettered, so a double click or two
    operators at once requeue each delivery once; the rest are reported as skipped.
    """
    by = request.user.get_username()
    done_ids = [delivery_id for delivery_id in ids if requeue([delivery_id], by=by)]
    done = list(Delivery.objects.filter(pk__in=done_ids).order_by("pk"))
    for delivery in done:
        model_admin.log_change(request, delivery, "Requeued from the dead-letter state.")
    model_admin.message_user(
        request,
        requeue_message(done, max(asked - len(done), 0)),
        messages.SUCCESS if done else messages.WARNING,
    )
    return len(done)
