"""The shared admin site: Switchyard's branding, the dashboard on its home page
(events.dashboard), its models first and in working order, and the third-party admins trimmed
to what Switchyard uses."""

from __future__ import annotations

from typing import Any

# Imported for its registrations, so there is one to undo whatever the app order.
import django_celery_beat.admin  # noqa: F401
from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django_celery_beat.admin import (
    CrontabScheduleAdmin,
    IntervalScheduleAdmin,
    PeriodicTaskAdmin,
)
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)
from django_celery_results.admin import GroupResultAdmin, TaskResultAdmin
from django_celery_results.models import GroupResult, TaskResult

from .. import dashboard, extensions
from ..models import Event
from .common import has_model_permission

# The events app's models in the order an operator works through them; others after these.
MODEL_ORDER = (
    "Event",
    "Delivery",
    "DeadLetter",
    "Replay",
    "HandlerState",
    "Source",
    "Route",
    "Resource",
    "Schedule",
    "ScheduleTick",
    "ApiToken",
    "RejectedRequest",
)
FIRST_APP = "events"


def in_working_order(apps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events app first, its models in ``MODEL_ORDER``; then the apps that registered an
    order (events.extensions.add_admin_order), in theirs; the rest as Django sorted them."""
    orders = {FIRST_APP: MODEL_ORDER, **extensions.admin_order()}
    ranked = list(orders)
    apps.sort(
        key=lambda app: (
            ranked.index(app["app_label"]) if app["app_label"] in orders else len(ranked)
        )
    )
    for app in apps:
        order = orders.get(app["app_label"])
        if order is not None:
            app["models"].sort(
                key=lambda model, order=order: (
                    order.index(model["object_name"])
                    if model["object_name"] in order
                    else len(order)
                )
            )
    return apps


class ReadOnlyResultMixin:
    """Rows written by Celery (task results) or by settings (beat's own periodic tasks): the
    admin only shows them."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyTaskResultAdmin(ReadOnlyResultMixin, TaskResultAdmin):
    pass


class ReadOnlyGroupResultAdmin(ReadOnlyResultMixin, GroupResultAdmin):
    pass


class ReadOnlyPeriodicTaskAdmin(ReadOnlyResultMixin, PeriodicTaskAdmin):
    """Every periodic task beat runs, shown but not edited here: Switchyard's schedules are
    edited in one place (Events -> Schedules), and the system's own tasks (the sweeper, the
    result cleanup) come from settings, so an edit here would be lost or break recovery."""

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AddOnlyMixin:
    """Crontabs and intervals: one row may be shared by several periodic tasks (a schedule and
    the system's result cleanup, say), so an existing row is never changed or deleted here (a
    delete would take every task using it along). A schedule's form adds a new one or picks
    an existing one."""

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AddOnlyCrontabAdmin(AddOnlyMixin, CrontabScheduleAdmin):
    pass


class AddOnlyIntervalAdmin(AddOnlyMixin, IntervalScheduleAdmin):
    pass


def configure(site: admin.AdminSite) -> None:
    site.site_header = "Switchyard"
    site.site_title = "Switchyard"
    site.index_title = "Operations"
    by_name = site.get_app_list

    def get_app_list(request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        # Used by the index, the app pages and the sidebar.
        return in_working_order(by_name(request, app_label))

    site.get_app_list = get_app_list  # type: ignore[method-assign]

    app_index = site.index

    def index(
        request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> TemplateResponse:
        # The dashboard above the app list (templates/admin/index.html), for those who may
        # see events.
        extra = dict(extra_context or {})
        if has_model_permission(request, Event, "view"):
            extra["dashboard"] = dashboard.context(request)
        return app_index(request, extra)

    site.index = index  # type: ignore[method-assign]

    for model, model_admin in (
        (TaskResult, ReadOnlyTaskResultAdmin),
        (GroupResult, ReadOnlyGroupResultAdmin),
        (PeriodicTask, ReadOnlyPeriodicTaskAdmin),
        (CrontabSchedule, AddOnlyCrontabAdmin),
        (IntervalSchedule, AddOnlyIntervalAdmin),
    ):
        if site.is_registered(model):
            site.unregister(model)
        site.register(model, model_admin)

    # Switchyard schedules with intervals and crontabs only.
    for model in (ClockedSchedule, SolarSchedule):
        if site.is_registered(model):
            site.unregister(model)
