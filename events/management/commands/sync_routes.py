"""manage.py sync_routes: create Route rows for declared handler subscriptions."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from events.models import Route
from events.routing import sync_routes
from handlers import registry


class Command(BaseCommand):
    help = "Create a route for each @handler(on=...) subscription that has none. Keeps edits."

    def handle(self, *args: Any, **opts: Any) -> None:
        created = sync_routes()
        for route in created:
            self.stdout.write(f"created {route.name}")
        known = {spec.name for spec in registry.all_handlers()}
        for route in Route.objects.exclude(handler__in=known):
            self.stderr.write(
                f"warning: route {route.name!r} names handler {route.handler!r}, "
                "which is not registered; its deliveries will dead-letter"
            )
        self.stdout.write(f"{len(created)} route(s) created, {Route.objects.count()} in all")
