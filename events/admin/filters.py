"""The list filters of the events and deliveries pages: each on an indexed column."""

from __future__ import annotations

from django.http import HttpRequest

from ..models import Delivery, DeliveryStatus, Event, EventStatus
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
