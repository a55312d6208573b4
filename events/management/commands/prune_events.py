"""manage.py prune_events --days N: delete history older than N days (events.retention)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from events.retention import PruneReport, prune

MIN_DAYS = 1


class Command(BaseCommand):
    help = (
        "Delete processed and ignored events received more than --days ago (and dead letters "
        "with --include-dead-letters), with their deliveries, attempts, agent steps and decided "
        "approvals; also old schedule ticks and write-tool keys. In-flight events and events "
        "with an undecided approval are kept."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, required=True, help="keep this many days")
        parser.add_argument("--include-dead-letters", action="store_true")
        parser.add_argument("--batch", type=int, default=500, help="events per transaction")
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")

    def handle(self, *args: Any, **opts: Any) -> None:
        days, batch = opts["days"], opts["batch"]
        if days < MIN_DAYS:
            raise CommandError(f"--days must be at least {MIN_DAYS}")
        if batch < 1:
            raise CommandError("--batch must be at least 1")
        cutoff = timezone.now() - timedelta(days=days)
        what = "events (dead letters too)" if opts["include_dead_letters"] else "events"
        verb = "would delete" if opts["dry_run"] else "deleting"
        self.stdout.write(f"prune: {verb} {what} received before {cutoff:%Y-%m-%d %H:%M %Z}")

        def progress(report: PruneReport) -> None:
            self.stdout.write(f"  {report.events} events deleted so far")

        report = prune(
            cutoff,
            include_dead_letters=opts["include_dead_letters"],
            batch=batch,
            dry_run=opts["dry_run"],
            progress=progress,
        )
        done = "would delete" if opts["dry_run"] else "deleted"
        others = "".join(f", {count} {label}" for label, count in report.others.items())
        self.stdout.write(
            f"prune: {done} {report.events} events, {report.schedule_ticks} schedule ticks" + others
        )
