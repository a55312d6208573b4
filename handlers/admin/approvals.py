"""Approvals: agent writes waiting for a person. Approve or reject from the list (bulk) or from
an approval's page (with a reason for a rejection). See handlers.approvals."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from events.admin.common import (
    admin_link,
    event_cell,
    has_model_permission,
    pretty_json,
    two_line_time,
)
from events.admin.filters import TimeRangeFilter
from events.models import EventStatus
from events.redaction import sanitiser_for

from ..approvals import approve, reject
from ..llm import get_agent
from ..models import Approval, ApprovalStatus


@admin.register(Approval)
class ApprovalAdmin(admin.ModelAdmin):
    list_display = ("id", "requested", "agent", "tool", "state", "event", "decided")
    list_filter = ("status", "agent", "tool", ("created_at", TimeRangeFilter))
    search_fields = ("agent", "tool", "decided_by")
    ordering = ("-created_at", "-id")
    actions = ("approve_selected", "reject_selected")
    list_select_related = ("delivery__event", "follow_up")
    fields = (
        "id",
        "state",
        "agent",
        "tool",
        "will_do",
        "input_json",
        "delivery_link",
        "event",
        "created_at",
        "decided_by",
        "decided_at",
        "reason",
        "follow_up_link",
        "executed_at",
        "result_json",
        "decision",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Rows change only through approve/reject; the page is read-only.
        return False

    def has_decide_permission(self, request: HttpRequest) -> bool:
        return has_model_permission(request, Approval, "change")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # The Approve and Reject buttons only for those whose POST would be accepted.
        fields = super().get_fields(request, obj)
        if self.has_decide_permission(request):
            return fields
        return [name for name in fields if name != "decision"]

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if not self.has_decide_permission(request):
            return {}
        return actions

    def get_urls(self) -> list[URLPattern]:
        decide = path(
            "<int:pk>/decide/",
            self.admin_site.admin_view(self.decide_view),
            name="handlers_approval_decide",
        )
        return [decide, *super().get_urls()]

    # --- columns and fields ---

    @admin.display(description="requested", ordering="created_at")
    def requested(self, obj: Approval) -> str | SafeString:
        return two_line_time(obj.created_at)

    @admin.display(description="status", ordering="status")
    def state(self, obj: Approval) -> str:
        """The status, and where an approved write stands: retrying or dead-lettered (its
        follow-up delivery used up its attempts; requeue it from Dead letters)."""
        label = obj.get_status_display()
        if obj.status == ApprovalStatus.APPROVED and obj.follow_up is not None:
            follow_up = obj.follow_up.status
            if follow_up == EventStatus.DEAD_LETTERED:
                return "approved, carrying it out was dead-lettered (requeue it)"
            if follow_up == EventStatus.FAILED:
                return "approved, carrying it out failed (retrying)"
        return label

    @admin.display(description="decided", ordering="decided_at")
    def decided(self, obj: Approval) -> str:
        if obj.decided_at is None:
            return "-"
        return f"{obj.decided_by} at {obj.decided_at:%Y-%m-%d %H:%M}"

    @admin.display(description="event")
    def event(self, obj: Approval) -> SafeString:
        return event_cell(obj.delivery.event)

    @admin.display(description="delivery")
    def delivery_link(self, obj: Approval) -> SafeString:
        return admin_link(obj.delivery, f"{obj.delivery.pk} ({obj.delivery.handler})")

    @admin.display(description="carried out by")
    def follow_up_link(self, obj: Approval) -> str | SafeString:
        if obj.follow_up is None:
            return "-"
        return admin_link(obj.follow_up, f"event {obj.follow_up.type} ({obj.follow_up.status})")

    @admin.display(description="what it will do")
    def will_do(self, obj: Approval) -> str | SafeString:
        agent = get_agent(obj.agent)
        chosen = agent.tools.get(obj.tool) if agent is not None else None
        if chosen is None:
            return "this tool is not deployed here"
        if chosen.preview is None:
            return "see the input below"
        try:
            text = chosen.preview(dict(obj.input))
        except Exception as exc:  # noqa: BLE001 - a page must render; say why there is none
            return sanitiser_for(obj.delivery).text(f"no preview: {type(exc).__name__}: {exc}")
        # The row keeps the real input (the write needs it); the page shows secrets redacted.
        text = sanitiser_for(obj.delivery).text(text)
        return format_html('<pre class="wrapped">{}</pre>', text)

    @admin.display(description="input")
    def input_json(self, obj: Approval) -> SafeString:
        return pretty_json(sanitiser_for(obj.delivery).json(obj.input))

    @admin.display(description="result")
    def result_json(self, obj: Approval) -> str | SafeString:
        return (
            "-" if obj.result is None else pretty_json(sanitiser_for(obj.delivery).json(obj.result))
        )

    @admin.display(description="decide")
    def decision(self, obj: Approval) -> str | SafeString:
        if obj.status != ApprovalStatus.PENDING:
            return "Decided."
        url = reverse("admin:handlers_approval_decide", args=[obj.pk])
        # Buttons of the page's own form (it carries the CSRF token): no nested forms.
        return format_html(
            '<textarea name="reason" form="approval_form" rows="2" cols="60" '
            'placeholder="Reason (for a rejection)"></textarea><br>'
            '<button type="submit" class="button default" form="approval_form" '
            'formmethod="post" formaction="{}" name="decision" value="approve">Approve</button> '
            '<button type="submit" class="button" form="approval_form" formmethod="post" '
            'formaction="{}" name="decision" value="reject">Reject</button>',
            url,
            url,
        )

    # --- decisions ---

    def decide_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_decide_permission(request):
            raise PermissionDenied
        choice = request.POST.get("decision")
        if choice not in ("approve", "reject"):
            self.message_user(request, "Choose approve or reject.", messages.ERROR)
        else:
            self._decide(request, [pk], choice, request.POST.get("reason", ""))
        return HttpResponseRedirect(reverse("admin:handlers_approval_change", args=[pk]))

    @admin.action(description="Approve selected (their writes run once)")
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[Approval]) -> None:
        self._decide(request, list(queryset.values_list("pk", flat=True)), "approve", "")

    @admin.action(description="Reject selected (nothing runs)")
    def reject_selected(self, request: HttpRequest, queryset: QuerySet[Approval]) -> None:
        self._decide(request, list(queryset.values_list("pk", flat=True)), "reject", "")

    def _decide(self, request: HttpRequest, ids: list[int], choice: str, reason: str) -> None:
        who = request.user.get_username()
        done = [
            pk
            for pk in ids
            if (approve(pk, by=who) if choice == "approve" else reject(pk, by=who, reason=reason))
        ]
        for approval in Approval.objects.filter(pk__in=done):
            self.log_change(request, approval, f"{choice.capitalize()}d.")
        verb = "Approved" if choice == "approve" else "Rejected"
        parts = []
        if done:
            numbers = ", ".join(str(pk) for pk in sorted(done))
            parts.append(f"{verb} {numbers}.")
            if choice == "approve":
                parts.append("Each write runs once, as its own delivery.")
        skipped = len(ids) - len(done)
        if skipped:
            parts.append(f"{skipped} no longer pending, left alone.")
        self.message_user(
            request,
            " ".join(parts) or "Nothing to do.",
            messages.SUCCESS if done else messages.WARNING,
        )
