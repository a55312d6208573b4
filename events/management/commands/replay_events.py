"""manage.py replay_events: publish stored events again as new events (events.replay)."""

from __future__ import annotations

import getpass
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from events import conf
from events.models import Replay, ReplayStatus
from events.replay import FilterError, Filters, Plan, dry_run, record, run, start
from events.replay.runner import BATCH, filters_of

# Options --resume refuses: the replay runs with the filters it was planned with.
NOT_WITH_RESUME = {
    "source": "--source",
    "event_type": "--type",
    "status": "--status",
    "received_from": "--from",
    "received_to": "--to",
    "dry_run": "--dry-run",
}


def moment(value: str, option: str) -> datetime:
    """An ISO date or date and time; without a zone, in TIME_ZONE."""
    parsed = parse_datetime(value)
    if parsed is None and (day := parse_date(value)) is not None:
        parsed = datetime(day.year, day.month, day.day)
    if parsed is None:
        raise CommandError(f"{option} {value!r} is not a date or an ISO date and time")
    return parsed if parsed.tzinfo else timezone.make_aware(parsed)


def who() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def money(value: Any) -> str:
    return f"${value:.4f}"


class Command(BaseCommand):
    help = (
        "Publish the stored events chosen by --source, --type, --status, --from and --to "
        "again, as new events that today's routes deliver. --dry-run prints how many events "
        "and deliveries, and an estimate of the agents' tokens and cost; above "
        "SWITCHYARD_REPLAY_CONFIRM_ABOVE events it needs --yes. --resume ID runs an "
        "interrupted replay again, publishing only what it had not."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--source", default="", help="the source's slug")
        parser.add_argument(
            "--type", default="", dest="event_type", help="an event type, or a prefix ending in *"
        )
        parser.add_argument("--status", default="", help="the events' status, e.g. dead_lettered")
        parser.add_argument("--from", dest="received_from", help="received at or after (ISO)")
        parser.add_argument("--to", dest="received_to", help="received before (ISO)")
        parser.add_argument("--dry-run", action="store_true", help="print the figures only")
        parser.add_argument("--yes", action="store_true", help="replay above the threshold")
        parser.add_argument("--batch", type=int, default=BATCH, help="events per transaction")
        parser.add_argument("--resume", type=int, metavar="ID", help="run replay ID again")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["batch"] < 1:
            raise CommandError("--batch must be at least 1")
        if opts["resume"] is not None:
            given = [option for name, option in NOT_WITH_RESUME.items() if opts[name]]
            if given:
                raise CommandError(
                    f"--resume runs the replay with its own filters: leave out {' '.join(given)}"
                )
            self.resume(opts["resume"], opts["batch"])
            return
        filters = Filters(
            source=opts["source"],
            type=opts["event_type"],
            status=opts["status"],
            received_from=moment(opts["received_from"], "--from")
            if opts["received_from"]
            else None,
            received_to=moment(opts["received_to"], "--to") if opts["received_to"] else None,
        )
        try:
            plan = dry_run(filters)
        except FilterError as error:
            raise CommandError(str(error)) from None
        self.print_plan(filters, plan)
        if opts["dry_run"]:
            return
        if not plan.events:
            self.stdout.write("replay: nothing to replay")
            return
        threshold = int(conf.REPLAY_CONFIRM_ABOVE.get())
        if plan.events > threshold and not opts["yes"]:
            raise CommandError(
                f"{plan.events} events is more than SWITCHYARD_REPLAY_CONFIRM_ABOVE "
                f"({threshold}): run again with --yes to replay them (or --dry-run to look)"
            )
        replay = record(filters, plan, by=who())
        start(replay.pk)
        self.stdout.write(f"replay {replay.pk}: started by {replay.requested_by}")
        self.execute_replay(replay, opts["batch"])

    def resume(self, replay_id: int, batch: int) -> None:
        replay = Replay.objects.filter(pk=replay_id).first()
        if replay is None:
            raise CommandError(f"replay {replay_id} does not exist")
        if not start(replay_id, resume=True):
            raise CommandError(f"replay {replay_id} is {replay.status}: nothing to resume")
        self.stdout.write(
            f"replay {replay.pk}: resumed ({filters_of(replay).describe()}), "
            f"{replay.events_done} of {replay.planned_events} events copied before"
        )
        replay.refresh_from_db()
        self.execute_replay(replay, batch)

    def execute_replay(self, replay: Replay, batch: int) -> None:
        def progress(done: Replay) -> None:
            self.stdout.write(
                f"  {done.events_done} of {replay.planned_events} events copied, "
                f"{done.deliveries_done} deliveries"
            )

        done = run(replay, batch=batch, progress=progress)
        status = "done" if done.status == ReplayStatus.DONE else done.status
        self.stdout.write(
            f"replay {done.pk}: {status}, {done.events_done} events copied, "
            f"{done.deliveries_done} deliveries"
        )

    def print_plan(self, filters: Filters, plan: Plan) -> None:
        out = self.stdout.write
        out(f"replay: {plan.events} events ({filters.describe()})")
        out(f"deliveries: {plan.total_deliveries}, from the routes enabled now")
        for handler, count in plan.deliveries.items():
            out(f"  {handler}: {count}")
        for agent in plan.agents:
            if agent.cost is None:
                out(f"  {agent.handler}: no recent runs, no estimate")
            else:
                out(
                    f"  {agent.handler}: ~{agent.tokens} tokens, ~{money(agent.cost_usd)} "
                    f"({agent.cost.tokens} tokens, {money(agent.cost.cost_usd)} a run over its "
                    f"last {agent.cost.runs} runs)"
                )
        if plan.estimated_tokens is None:
            out("estimate: no agent with recent runs")
        else:
            out(
                f"estimate: ~{plan.estimated_tokens} tokens, ~{money(plan.estimated_cost_usd)}"
                + (
                    f" (not counting {', '.join(plan.without_recent_runs)}: no recent runs)"
                    if plan.without_recent_runs
                    else ""
                )
            )
