"""Dead letters: deliveries that used up their attempts, each one click from a requeue, and
grouped by cause (events/admin/causes.py)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString

from ..models import DeadLetter, Delivery, DeliveryStatus
from . import causes
from .common import (
    HandlerFilter,
    requeue_and_report,
    truncated_with_title,
    two_line_time,
)
from .filters import ErrorClassFilter, TimeRangeFilter
from .pipeline import DeliveryAdmin


class DeadErrorClassFilter(ErrorClassFilter):
    statuses = (DeliveryStatus.DEAD_LETTERED,)


@admin.register(DeadLetter)
class DeadLetterAdmin(DeliveryAdmin):
    # Narrow enough for a 1400 px window with the sidebar open, the button near the start.
    # (Every row used up its attempts: the count is on the delivery's page.)
    list_display = (
        "delivery",
        "requeue_button",
        "event_link",
        "handler_name",
        "error_kind",
        "short_error",
        "finished",
    )
    list_display_links = None
    list_filter = (
        HandlerFilter,
        DeadErrorClassFilter,
        causes.CauseFilter,
        ("finished_at", TimeRangeFilter),
    )
    # With a "By cause" link (events/admin/causes.py).
    change_list_template = "admin/events/deadletter/change_list.html"
    ordering = ("-finished_at",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Delivery]:
        # Served by the partial index "delivery_dead".
        return super().get_queryset(request).filter(status=DeliveryStatus.DEAD_LETTERED)

    def get_list_display(self, request: HttpRequest) -> Any:
        if self.has_requeue_permission(request):
            return self.list_display
        return tuple(name for name in self.list_display if name != "requeue_button")

    def get_urls(self) -> list[URLPattern]:
        requeue_url = path(
            "<int:pk>/requeue/",
            self.admin_site.admin_view(self.requeue_view),
            name="events_deadletter_requeue",
        )
        return [requeue_url, *causes.urls(self), *super().get_urls()]

    @admin.display(description="delivery", ordering="id")
    def delivery(self, obj: Delivery) -> SafeString:
        url = reverse("admin:events_delivery_change", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, obj.pk)

    @admin.display(description="finished at", ordering="finished_at")
    def finished(self, obj: Delivery) -> str | SafeString:
        return two_line_time(obj.finished_at)

    @admin.display(description="last error")
    def short_error(self, obj: Delivery) -> str | SafeString:
        return truncated_with_title(obj.last_error, 80)

    @admin.display(description="requeue")
    def requeue_button(self, obj: Delivery) -> SafeString:
        # A submit button of the change list's own form (which carries the CSRF token),
        # posted to this row's requeue URL: no nested forms, no JavaScript.
        url = reverse("admin:events_deadletter_requeue", args=[obj.pk])
        return format_html(
            '<button type="submit" class="button" form="changelist-form" formmethod="post" '
            'formaction="{}">Requeue</button>',
            url,
        )

    def requeue_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """POST only: requeue one dead letter and return to the list it was clicked in."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_requeue_permission(request):
            raise PermissionDenied
        requeue_and_report(self, request, [pk], 1)
        return HttpResponseRedirect(self.back_from_requeue(request, pk))

    def back_from_requeue(self, request: HttpRequest, pk: int) -> str:
        """The dead-letter list the button was clicked in (with its filters), the delivery's
        page when it was clicked there, else the dead-letter list."""
        changelist = reverse("admin:events_deadletter_changelist")
        referer = request.headers.get("referer", "")
        if not url_has_allowed_host_and_scheme(
            referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return changelist
        referer_path = referer.split("?", 1)[0]
        if referer_path.endswith(changelist):
            return referer
        delivery_page = reverse("admin:events_delivery_change", args=[pk])
        # Once requeued it is no longer a dead letter: back to its delivery page.
        pages = (delivery_page, reverse("admin:events_deadletter_change", args=[pk]))
        if referer_path.endswith(pages):
            return delivery_page
        return changelist
