"""The list filters of the events and deliveries pages (each on an indexed column), and the
time-range filter every list of records uses, handlers' admins included."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db.models import Field, Model, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from ..metrics import WAITING
from ..models import Delivery, DeliveryStatus, Event, EventStatus, Route
from .common import (
    ChoicesFilter,
    ValuesFilter,
    recent_values,
)


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


class QueueFilter(ValuesFilter):
    """The queue of the delivery's route; "default" also takes deliveries whose route is gone
    (the dashboard's backlog counts them there: events.metrics.backlog_by_queue)."""

    title = "queue"
    parameter_name = field = "queue"

    def values(self, request: HttpRequest) -> list[str]:
        return sorted({*Route.objects.values_list("queue", flat=True).distinct(), "default"})

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        if value == "default":
            return queryset.filter(Q(route__queue=value) | Q(route__isnull=True))
        return queryset.filter(route__queue=value)


class DueFilter(admin.SimpleListFilter):
    """Deliveries due and not yet running: the backlog (pending, or retrying past their time),
    through the partial index "delivery_waiting"."""

    title = "waiting"
    parameter_name = "waiting"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("due", "due now, not running")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "due":
            return queryset.filter(status__in=WAITING, next_attempt_at__lte=timezone.now())
        return queryset


# --- Time range ----------------------------------------------------------------------------

# The quick choices: a query-string value, its label, and how far back it reaches from now.
QUICK_RANGES: dict[str, tuple[str, timedelta]] = {
    "1h": ("Last hour", timedelta(hours=1)),
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
}
# What <input type="datetime-local"> sends and shows.
INPUT_FORMAT = "%Y-%m-%dT%H:%M"
# Warnings already given for this request: the change list may build its filters twice.
WARNED_ATTR = "_time_range_warned"


def parse_moment(value: str) -> datetime:
    """A time typed into a filter (``2025-03-01T12:00``, ``2025-03-01 12:00:30``, or a day,
    meaning its midnight), in the current time zone unless it names one.

    Raises ValueError for anything else, including dates that do not exist.
    """
    text = value.strip()
    moment = parse_datetime(text)
    if moment is None:
        day = parse_date(text)
        if day is None:
            raise ValueError(f"not a date and time: {value!r}")
        moment = datetime.combine(day, time())
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    try:
        # What the database adapter will do; the first hours of year 1 east of UTC overflow.
        moment.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(f"out of range: {value!r}") from exc
    return moment


class TimeRangeFilter(admin.FieldListFilter):
    """From and to on a date-time column (the end is not included), with the last hour, day
    and week a click away. Use it as ``list_filter = [("received_at", TimeRangeFilter)]``.

    A value that is not a time is ignored with a warning above the list, never an error page.
    Without JavaScript: the inputs are a GET form that carries the list's other parameters.
    """

    template = "admin/events/time_range_filter.html"

    def __init__(
        self,
        field: Field[Any, Any],
        request: HttpRequest,
        params: dict[str, Any],
        model: type[Model],
        model_admin: Any,
        field_path: str,
    ) -> None:
        self.from_param = f"{field_path}__from"
        self.to_param = f"{field_path}__to"
        self.last_param = f"{field_path}__last"
        super().__init__(field, request, params, model, model_admin, field_path)
        self.hidden: list[tuple[str, str]] = []
        self.start: datetime | None = None
        self.end: datetime | None = None
        self.from_value = self.to_value = ""
        last = self.param(self.last_param)
        if last:
            if last in QUICK_RANGES:
                self.start = timezone.now() - QUICK_RANGES[last][1]
            else:
                self.warn(request, "period", last)
        for name, side in ((self.from_param, "from"), (self.to_param, "to")):
            value = self.param(name)
            if not value:
                continue
            try:
                moment = parse_moment(value)
            except ValueError:
                self.warn(request, side, value)
                continue
            shown = timezone.localtime(moment).strftime(INPUT_FORMAT)
            if side == "from":
                self.start = moment if self.start is None else max(self.start, moment)
                self.from_value = shown
            else:
                self.end = moment
                self.to_value = shown

    def param(self, name: str) -> str:
        value = self.used_parameters.get(name)
        if isinstance(value, list):
            value = value[-1] if value else ""
        return str(value or "")

    def warn(self, request: HttpRequest, side: str, value: str) -> None:
        warned: set[str] = getattr(request, WARNED_ATTR, set())
        key = f"{self.field_path} {side}"
        if key in warned:
            return
        warned.add(key)
        setattr(request, WARNED_ATTR, warned)
        if side == "period":
            text = f"a period of {value[:40]!r}: choose one of the listed ones"
        else:
            text = f"the {side} time {value[:40]!r}: not a date and time such as 2025-03-01 12:00"
        messages.warning(request, f"The {self.title} filter ignored {text}.")

    def expected_parameters(self) -> list[str | None]:
        return [self.from_param, self.to_param, self.last_param]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.start is not None:
            queryset = queryset.filter(**{f"{self.field_path}__gte": self.start})
        if self.end is not None:
            queryset = queryset.filter(**{f"{self.field_path}__lt": self.end})
        return queryset

    def choices(self, changelist: ChangeList) -> Iterator[Any]:
        # The form's hidden inputs: the list's other filters, search and ordering.
        own = [self.from_param, self.to_param, self.last_param]
        self.hidden = [(k, str(v)) for k, v in changelist.params.items() if k not in own]
        last = self.param(self.last_param)
        yield {
            "selected": not (last or self.param(self.from_param) or self.param(self.to_param)),
            "query_string": changelist.get_query_string(remove=own),
            "display": "Any time",
        }
        for value, (label, _) in QUICK_RANGES.items():
            yield {
                "selected": last == value,
                "query_string": changelist.get_query_string(
                    {self.last_param: value}, [self.from_param, self.to_param]
                ),
                "display": label,
            }
