"""manage.py consume_stream STREAM --group G --source SLUG: publish a Redis Stream's entries.

The loop lives in events.streams; this command checks the arguments, connects, turns SIGTERM
and SIGINT into a clean stop and prints progress.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from events.models import Source
from events.stream_entries import StreamOptions
from events.streams import Counts, StreamConsumer

from ._sources import source_of_kind

STREAM_KIND = "stream"
# An entry id is at most 41 characters; the fallback external id is "<stream>/<entry id>".
MAX_STREAM_NAME = 200


def _int_between(low: int, high: int) -> Any:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"{number} is not between {low} and {high}")
        return number

    return parse


def redacted(url: str) -> str:
    """A Redis URL without its password, for the start line."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"


class Command(BaseCommand):
    help = (
        "Read a Redis Stream with a consumer group and publish each entry as an event of a "
        "stream source; acknowledge it once stored. Stops cleanly on SIGTERM/SIGINT."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("stream", help="the stream's key")
        parser.add_argument("--group", required=True, help="consumer group (created if missing)")
        parser.add_argument("--source", required=True, help="slug of a source of kind stream")
        parser.add_argument("--consumer", help="consumer name (default: <hostname>-<pid>)")
        parser.add_argument("--type-field", default="type", help="field with the event type")
        parser.add_argument("--id-field", default="id", help="field with the dedupe id")
        parser.add_argument(
            "--payload-field",
            default="payload",
            help="field with the payload as a JSON object; without it, the payload is the "
            "entry's other fields (as strings)",
        )
        parser.add_argument(
            "--claim-idle",
            type=_int_between(1, 86_400_000),
            default=60_000,
            help="ms an entry stays pending before another consumer takes it over (60000)",
        )
        parser.add_argument(
            "--max-deliveries",
            type=_int_between(1, 1000),
            default=5,
            help="deliveries of one entry before it is dead-lettered unstored (5)",
        )
        parser.add_argument(
            "--batch", type=_int_between(1, 1000), default=10, help="entries per read (10)"
        )
        parser.add_argument(
            "--block",
            type=_int_between(1, 60_000),
            default=1000,
            help="ms one read waits for new entries; also how long a stop may take (1000)",
        )
        parser.add_argument(
            "--start-id",
            default="$",
            help="where a group this command creates starts: $ (new entries) or 0 (all)",
        )
        parser.add_argument("--redis-url", help="default: the REDIS_URL setting")
        parser.add_argument(
            "--progress-every",
            type=_int_between(1, 86_400),
            default=60,
            help="seconds between progress lines (60)",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        source = self._source(opts["source"])
        options = StreamOptions(
            stream=opts["stream"],
            group=opts["group"],
            consumer=opts["consumer"] or f"{socket.gethostname()}-{os.getpid()}",
            type_field=opts["type_field"],
            id_field=opts["id_field"],
            payload_field=opts["payload_field"],
            claim_idle_ms=opts["claim_idle"],
            max_deliveries=opts["max_deliveries"],
            batch=opts["batch"],
            block_ms=opts["block"],
            start_id=opts["start_id"],
        )
        self._check(options)
        url = opts["redis_url"] or settings.REDIS_URL
        try:
            client = redis.Redis.from_url(
                url,
                # A blocked read answers within block_ms; anything longer is a dead connection.
                socket_timeout=options.block_ms / 1000 + 10,
                socket_connect_timeout=5,
                health_check_interval=30,
            )
        except ValueError as exc:
            raise CommandError(f"--redis-url: {exc}") from None
        consumer = StreamConsumer(client, source, options)
        try:
            created = consumer.ensure_group()
        except redis.RedisError as exc:
            raise CommandError(f"redis at {redacted(url)}: {exc}") from None

        self._say(
            f"consuming {options.stream} into source {source.slug}: group {options.group} "
            f"({'created at ' + options.start_id if created else 'existing'}), consumer "
            f"{options.consumer}, redis {redacted(url)}"
        )

        def request_stop(signum: int, frame: FrameType | None) -> None:
            consumer.stop()

        previous = {
            sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            counts = consumer.run(on_progress=self._progress, every=opts["progress_every"])
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
            client.close()
        self._say(f"stopped: {counts}")

    def _source(self, slug: str) -> Source:
        return source_of_kind(
            slug, STREAM_KIND, why_only=f"only {STREAM_KIND} sources take stream entries"
        )

    def _check(self, options: StreamOptions) -> None:
        if not options.stream or len(options.stream) > MAX_STREAM_NAME or "\x00" in options.stream:
            raise CommandError(f"STREAM must be 1-{MAX_STREAM_NAME} characters, without NUL")
        if not options.group.strip() or not options.consumer.strip():
            raise CommandError("--group and --consumer must not be empty")
        names = [options.type_field, options.id_field, options.payload_field]
        if any(not name for name in names) or len(set(names)) != len(names):
            raise CommandError("--type-field, --id-field and --payload-field must differ")

    def _progress(self, counts: Counts) -> None:
        self._say(str(counts))

    def _say(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()
