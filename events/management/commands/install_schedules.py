"""manage.py install_schedules: the default schedules (events.schedules.defaults). Idempotent:
a schedule that exists by name is left as it is, whatever an operator changed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from events.routing import matching_routes
from events.schedules import SCHEDULE_TASK, event_type
from events.schedules.defaults import DEFAULTS, Installed, install
from events.schedules.ticks import schedules_source_as_routed


def describe(installed: Installed) -> str:
    task = installed.task
    if task.task != SCHEDULE_TASK:
        return f"runs task {task.task!r}, not {SCHEDULE_TASK}: it publishes no events"
    when = task.crontab.human_readable if task.crontab else str(task.scheduler or "no schedule")
    etype = event_type(task.name)
    routes = matching_routes(etype, {}, source=schedules_source_as_routed())
    listeners = ", ".join(route.handler for route in routes) or "none yet (add a route)"
    state = "enabled" if task.enabled else "disabled"
    return f"{when}, {state}; event {etype} -> {listeners}"


class Command(BaseCommand):
    help = (
        "Install the default schedules (daily-briefing at 07:00 in TIME_ZONE, metrics-check "
        "hourly). Existing schedules of the same name are left as they are."
    )

    def handle(self, *args: Any, **opts: Any) -> None:
        created = 0
        for spec in DEFAULTS:
            installed = install(spec)
            created += installed.created
            verb = "created" if installed.created else "left as it is"
            self.stdout.write(f"schedule {spec.name!r} {verb}: {describe(installed)}")
        left = len(DEFAULTS) - created
        self.stdout.write(f"{created} schedule(s) created, {left} already there.")
