"""Dead letters by cause (events.dead_letters): the groups with their counts, first and last
seen and a sample; requeue a whole group, resolve one without running it, export them."""

from __future__ import annotations

import csv
import io
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    JsonResponse,
)
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from ..dead_letters import Group, group_by_key, groups
from ..models import Delivery
from ..transitions import resolve
from .common import requeue_and_report

# The dead-letter admin (events/admin/dead_letters.py), which imports this module.
DeadLetterAdmin = Any


class CauseFilter(admin.SimpleListFilter):
    """``?cause=<key>``: the dead letters of one group (linked from the causes page)."""

    title = "cause"
    parameter_name = "cause"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        # Reached by link from the causes page only: listed while it is applied.
        return [(str(self.value()), "this cause")] if self.value() else []

    def queryset(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> QuerySet[Delivery]:
        if not self.value():
            return queryset
        group = group_by_key(str(self.value()))
        return queryset.filter(id__in=group.ids if group else [])


def urls(model_admin: DeadLetterAdmin) -> list[URLPattern]:
    view = model_admin.admin_site.admin_view
    return [
        path(
            "causes/", view(lambda r: causes_view(model_admin, r)), name="events_deadletter_causes"
        ),
        path(
            "causes/export.<str:fmt>",
            view(lambda r, fmt: export_view(model_admin, r, fmt)),
            name="events_deadletter_causes_export",
        ),
        path(
            "causes/<str:key>/<str:action>/",
            view(lambda r, key, action: group_action_view(model_admin, r, key, action)),
            name="events_deadletter_cause_action",
        ),
    ]


def causes_view(model_admin: DeadLetterAdmin, request: HttpRequest) -> HttpResponse:
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    found, truncated = groups()
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": "Dead letters by cause",
        "groups": found,
        "total": sum(group.count for group in found),
        "truncated": truncated,
        "can_act": model_admin.has_requeue_permission(request),
        "list_url": reverse("admin:events_deadletter_changelist"),
    }
    return TemplateResponse(request, "admin/events/deadletter/causes.html", context)


def group_action_view(
    model_admin: DeadLetterAdmin, request: HttpRequest, key: str, action: str
) -> HttpResponse:
    """POST requeue or resolve one group. Resolving asks for a confirmation first."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not model_admin.has_requeue_permission(request):
        raise PermissionDenied
    back = reverse("admin:events_deadletter_causes")
    group = group_by_key(key)
    if group is None or action not in ("requeue", "resolve"):
        model_admin.message_user(
            request, "That group has no dead letters any more.", messages.WARNING
        )
        return HttpResponseRedirect(back)
    if action == "requeue":
        requeue_and_report(model_admin, request, group.ids, group.count)
        return HttpResponseRedirect(back)
    if request.POST.get("confirm") != "yes":
        context = {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.model._meta,
            "title": "Resolve these dead letters without running them?",
            "group": group,
            "back": back,
        }
        return TemplateResponse(request, "admin/events/deadletter/resolve.html", context)
    by = request.user.get_username()
    done = resolve(group.ids, by=by)
    for delivery in Delivery.objects.filter(pk__in=group.ids, resolved_by=by).order_by("pk"):
        model_admin.log_change(request, delivery, "Resolved without running it.")
    model_admin.message_user(
        request,
        f"Resolved {done} dead letter{'s' if done != 1 else ''} of {group.handler} "
        f"({group.error_class or 'no error class'}) without running them.",
        messages.SUCCESS if done else messages.WARNING,
    )
    return HttpResponseRedirect(back)


EXPORT_FIELDS = ("handler", "error_class", "fingerprint", "count", "first_seen", "last_seen")


def export_view(model_admin: DeadLetterAdmin, request: HttpRequest, fmt: str) -> HttpResponse:
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    found, truncated = groups()
    rows = [_row(group) for group in found]
    if fmt == "json":
        response: HttpResponse = JsonResponse({"groups": rows, "truncated": truncated})
    elif fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=[*EXPORT_FIELDS, "sample", "delivery_ids"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "delivery_ids": " ".join(map(str, row["delivery_ids"]))})
        response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    else:
        return JsonResponse({"error": "export as csv or json"}, status=404)
    response["Content-Disposition"] = f'attachment; filename="dead-letters-by-cause.{fmt}"'
    return response


def _row(group: Group) -> dict[str, Any]:
    return {
        "handler": group.handler,
        "error_class": group.error_class,
        "fingerprint": group.fingerprint,
        "count": group.count,
        "first_seen": group.first_seen.isoformat() if group.first_seen else None,
        "last_seen": group.last_seen.isoformat() if group.last_seen else None,
        "sample": group.sample,
        "delivery_ids": group.ids,
    }


__all__ = ["CauseFilter", "urls"]
