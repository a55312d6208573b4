"""Schedules (beat's periodic tasks that publish ``schedule.<name>``; events.schedules) with their
overlap policy, and the ticks they sent.

Edits reach a running beat without a restart. Saving a schedule goes through
``PeriodicTask.save()``, which bumps ``PeriodicTasks.last_update``; the bulk actions and the bulk
delete here change rows with UPDATE/DELETE, which skips that, so each calls
``PeriodicTasks.update_changed()`` itself. Beat notices within ``CELERY_BEAT_MAX_LOOP_INTERVAL``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.contrib import admin, messages
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django_celery_beat.models import PeriodicTask, PeriodicTasks
from kombu.exceptions import OperationalError

from ..models import OverlapPolicy, Schedule, SchedulePolicy, ScheduleTick
from ..routing import matching_routes
from ..schedules import DUE_HEADER, SCHEDULE_TASK, SENT_HEADER, event_type
from ..schedules.tasks import run_schedule
from ..schedules.ticks import schedules_source_as_routed
from ..schedules.timing import next_runs
from .common import LINE_BREAK, ChoicesFilter, admin_link, event_cell, two_line_time
from .schedule_forms import ScheduleForm

RECENT_TICKS = 10
# How many upcoming run times a schedule's page lists.
UPCOMING_RUNS = 5


def when(obj: PeriodicTask) -> str:
    if obj.crontab is not None:
        return str(obj.crontab.human_readable)
    if obj.interval is not None:
        return f"every {obj.interval.every} {obj.interval.period}"
    return "no schedule"


class OverlapFilter(ChoicesFilter):
    title = "overlap"
    parameter_name = "overlap"
    options = OverlapPolicy

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value == OverlapPolicy.SKIP:
            # No policy row means skip.
            return queryset.exclude(switchyard_policy__overlap=OverlapPolicy.ALLOW)
        if value == OverlapPolicy.ALLOW:
            return queryset.filter(switchyard_policy__overlap=OverlapPolicy.ALLOW)
        return queryset


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    form = ScheduleForm
    list_display = (
        "name",
        "enabled",
        "timing",
        "next_run",
        "event",
        "overlap",
        "expiry",
        "last_tick",
        "last_sent",
    )
    list_filter = ("enabled", OverlapFilter)
    search_fields = ("name", "description")
    list_select_related = ("crontab", "interval", "switchyard_policy")
    actions = (
        "enable_schedules",
        "disable_schedules",
        "overlap_skip",
        "overlap_allow",
        "run_now",
    )
    readonly_fields = (
        "event",
        "listeners",
        "recent_ticks",
        "last_sent",
        "sent_count",
        "upcoming",
    )
    fieldsets = (
        (None, {"fields": ("name", "enabled", "description")}),
        ("When", {"fields": ("crontab", "interval", "start_time", "upcoming")}),
        ("Event", {"fields": ("kwargs", "event", "listeners")}),
        (
            "Runs",
            {
                "fields": (
                    "overlap",
                    "expire_seconds",
                    "queue",
                    "last_sent",
                    "sent_count",
                    "recent_ticks",
                )
            },
        ),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        last = ScheduleTick.objects.filter(schedule=OuterRef("pk")).order_by("-recorded_at")
        return (
            super()
            .get_queryset(request)
            .filter(task=SCHEDULE_TASK)
            .annotate(
                last_tick_status=Subquery(last.values("status")[:1]),
                last_tick_at=Subquery(last.values("recorded_at")[:1]),
            )
        )

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        obj.task = SCHEDULE_TASK
        super().save_model(request, obj, form, change)
        form.save_policy()

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name in ("crontab", "interval") and formfield is not None:
            # A crontab or interval row may be shared with other tasks (the system's result
            # cleanup among them): no icon here edits, deletes or opens one; "+" adds a new row.
            widget = formfield.widget
            widget.can_change_related = widget.can_delete_related = False
            widget.can_view_related = False
        return formfield

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        super().delete_queryset(request, queryset)
        # A bulk delete sends no signal beat listens to.
        PeriodicTasks.update_changed()

    # --- columns and fields ---

    @admin.display(description="when")
    def timing(self, obj: PeriodicTask) -> str:
        return when(obj)

    @admin.display(description="next run")
    def next_run(self, obj: PeriodicTask) -> str | SafeString:
        if not obj.enabled:
            return "disabled"
        runs = next_runs(obj, timezone.now(), count=1)
        return two_line_time(runs[0]) if runs else "-"

    @admin.display(description="next runs")
    def upcoming(self, obj: PeriodicTask | None) -> str | SafeString:
        """The next run times, computed from the saved crontab or interval and time zone."""
        if obj is None or not obj.pk:
            return "Shown once the schedule is saved."
        runs = next_runs(obj, timezone.now(), count=UPCOMING_RUNS)
        if not runs:
            return "-"
        listed = format_html_join(LINE_BREAK, "{}", ((two_line_time(run),) for run in runs))
        if obj.enabled:
            return listed
        return format_html("{}<br>(disabled: none of these runs until it is enabled)", listed)

    # Beat's own columns, in Switchyard's words (django-celery-beat's speak of tasks).
    @admin.display(description="last sent", ordering="last_run_at")
    def last_sent(self, obj: PeriodicTask) -> str | SafeString:
        """When beat last sent a tick; cleared when the schedule is enabled or disabled."""
        return two_line_time(obj.last_run_at)

    @admin.display(description="ticks sent")
    def sent_count(self, obj: PeriodicTask) -> int:
        return obj.total_run_count

    @admin.display(description="event type")
    def event(self, obj: PeriodicTask | None) -> str | SafeString:
        if obj is None or not obj.name:
            return "-"
        return format_html("<code>{}</code>", event_type(obj.name))

    @admin.display(description="overlap")
    def overlap(self, obj: PeriodicTask) -> str:
        policy = getattr(obj, "switchyard_policy", None)
        return str(policy.overlap if policy else OverlapPolicy.SKIP)

    @admin.display(description="expires after")
    def expiry(self, obj: PeriodicTask) -> str:
        return f"{obj.expire_seconds} s" if obj.expire_seconds else "default"

    @admin.display(description="last tick")
    def last_tick(self, obj: Any) -> str | SafeString:
        status = getattr(obj, "last_tick_status", None)
        if not status:
            return "-"
        return format_html("{} {}", status, two_line_time(obj.last_tick_at))

    @admin.display(description="routes")
    def listeners(self, obj: PeriodicTask | None) -> str | SafeString:
        """The handlers a tick reaches, and a link to add a route for this schedule."""
        if obj is None or not obj.pk:
            return "Save the schedule, then add a route on its event type."
        etype = event_type(obj.name)
        try:
            payload = json.loads(obj.kwargs or "{}")
        except ValueError:
            payload = {}
        routes = matching_routes(etype, payload, source=schedules_source_as_routed())
        add = (
            reverse("admin:events_route_add")
            + "?"
            + urlencode({"name": f"{obj.name} schedule", "event_type": etype})
        )
        listed = format_html_join(
            ", ", "{}", ((admin_link(route, route.handler),) for route in routes)
        )
        return format_html('{} <a href="{}">add a route</a>', listed or "no route yet;", add)

    @admin.display(description="recent ticks")
    def recent_ticks(self, obj: PeriodicTask | None) -> str | SafeString:
        if obj is None or not obj.pk:
            return "-"
        ticks = ScheduleTick.objects.filter(schedule=obj).select_related("event")[:RECENT_TICKS]
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    two_line_time(tick.due_at),
                    tick.status,
                    event_cell(tick.event) if tick.event else "-",
                    tick.detail,
                )
                for tick in ticks
            ),
        )
        if not rows:
            return "none yet"
        everything = (
            reverse("admin:events_scheduletick_changelist") + "?" + urlencode({"name": obj.name})
        )
        return format_html(
            "<table><tr><th>due</th><th>status</th><th>event</th><th>detail</th></tr>{}</table>"
            '<a href="{}">all ticks of this schedule</a>',
            rows,
            everything,
        )

    # --- actions (each safe to run twice) ---

    @admin.action(description="Enable selected schedules", permissions=["change"])
    def enable_schedules(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        # Counted from now: no catch-up tick for the time the schedule was off.
        changed = queryset.filter(enabled=False).update(
            enabled=True, last_run_at=None, date_changed=timezone.now()
        )
        PeriodicTasks.update_changed()
        self.report(request, changed, queryset.count(), "enabled")

    @admin.action(description="Disable selected schedules", permissions=["change"])
    def disable_schedules(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        changed = queryset.filter(enabled=True).update(
            enabled=False, last_run_at=None, date_changed=timezone.now()
        )
        PeriodicTasks.update_changed()
        self.report(request, changed, queryset.count(), "disabled")

    @admin.action(description="Overlap: skip while a run is in flight", permissions=["change"])
    def overlap_skip(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self.set_overlap(request, queryset, OverlapPolicy.SKIP)

    @admin.action(description="Overlap: allow overlapping runs", permissions=["change"])
    def overlap_allow(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self.set_overlap(request, queryset, OverlapPolicy.ALLOW)

    @admin.action(description="Run selected schedules now", permissions=["change"])
    def run_now(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        """One tick per schedule, due now. It goes through the same checks as beat's ticks
        (overlap included); the schedule's own timing is unchanged."""
        sent: list[str] = []
        for schedule in queryset.order_by("name"):
            now = datetime.now(UTC).isoformat()
            options: dict[str, Any] = {"queue": schedule.queue} if schedule.queue else {}
            try:
                run_schedule.apply_async(
                    kwargs=json.loads(schedule.kwargs or "{}"),
                    headers={
                        "periodic_task_name": schedule.name,
                        DUE_HEADER: now,
                        SENT_HEADER: now,
                    },
                    **options,
                )
            except (OperationalError, OSError) as exc:
                self.message_user(
                    request,
                    f"Could not send a tick for {schedule.name!r}: {exc}. Is the broker up?",
                    messages.ERROR,
                )
                break
            sent.append(schedule.name)
        if sent:
            self.message_user(
                request,
                f"Sent a tick now for {', '.join(sent)}. Schedule ticks shows what became of it.",
                messages.SUCCESS,
            )

    def set_overlap(
        self, request: HttpRequest, queryset: QuerySet[Any], overlap: OverlapPolicy
    ) -> None:
        # Read by each tick when it runs: beat needs no reload.
        changed = 0
        for pk in queryset.values_list("pk", flat=True):
            policy, created = SchedulePolicy.objects.get_or_create(
                periodic_task_id=pk, defaults={"overlap": overlap}
            )
            if not created and policy.overlap != overlap:
                SchedulePolicy.objects.filter(pk=pk).update(
                    overlap=overlap, updated_at=timezone.now()
                )
                changed += 1
            elif created and overlap != OverlapPolicy.SKIP:
                changed += 1
        self.report(request, changed, queryset.count(), f"set to overlap {overlap}")

    def report(self, request: HttpRequest, changed: int, asked: int, what: str) -> None:
        parts = [f"{changed} schedule(s) {what}."]
        if asked > changed:
            parts.append(f"{asked - changed} already were.")
        self.message_user(
            request, " ".join(parts), messages.SUCCESS if changed else messages.WARNING
        )
