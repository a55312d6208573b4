"""manage.py publish_event --source S --type T --payload JSON: publish one event, print its id."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from events.models import Source
from events.publish import PublishError, publish


class Command(BaseCommand):
    help = "Publish one event through the same path as webhooks and the API; prints its id."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--source", required=True, help="slug of an existing source")
        parser.add_argument("--type", required=True, dest="event_type", help="event type")
        parser.add_argument("--payload", default="{}", help="a JSON object (default {})")
        parser.add_argument("--external-id", default=None, help="dedupe key within the source")
        parser.add_argument("--partition-key", default=None)
        parser.add_argument("--schema-version", type=int, default=1)

    def handle(self, *args: Any, **opts: Any) -> None:
        source = Source.objects.filter(slug=opts["source"]).first()
        if source is None:
            raise CommandError(f"source {opts['source']!r} does not exist (see create_source)")
        if not source.enabled:
            raise CommandError(f"source {opts['source']!r} is disabled")
        try:
            payload = json.loads(opts["payload"])
        except (ValueError, RecursionError) as exc:
            raise CommandError(f"--payload is not valid JSON: {exc}") from None
        try:
            result = publish(
                source=source,
                type=opts["event_type"],
                payload=payload,
                external_id=opts["external_id"],
                partition_key=opts["partition_key"],
                schema_version=opts["schema_version"],
            )
        except PublishError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(str(result.event.id))
        if not result.created:
            self.stderr.write("duplicate: an event with this external id already exists")
        else:
            self.stderr.write(f"{result.event.status}, {result.deliveries} deliveries")
