"""The list filters of the events and deliveries pages: each on an indexed column."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

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
