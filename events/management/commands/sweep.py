"""manage.py sweep: run the sweeper once (beat runs it every SWITCHYARD_SWEEP_INTERVAL s)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from events.recovery import sweep


class Command(BaseCommand):
    help = "Re-send deliveries whose broker message was lost and take back ones from dead workers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--grace", type=float, default=None, help="seconds (default: setting)")

    def handle(self, *args: Any, **opts: Any) -> None:
        report = sweep(grace=opts["grace"])
        self.stdout.write(
            f"re-sent {report.resent}, took back {report.recovered}, "
            f"dead-lettered {report.dead_lettered}"
        )
