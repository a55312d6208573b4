"""Replay: stored events chosen by source, type, status and time, published again as new
events (events.replay.runner) after a dry run that counts them, their deliveries and the agents'
likely tokens and cost (events.replay.plan). Entry points: the admin's "Replay events" page
(events/admin/replays.py) and ``manage.py replay_events``.

Not to be confused with events.replays: a webhook sent again by an attacker or a sender.
"""

from .plan import MAX_SELECTED, FilterError, Filters, Plan, chosen, dry_run
from .runner import external_id, record, run, start

__all__ = [
    "MAX_SELECTED",
    "FilterError",
    "Filters",
    "Plan",
    "chosen",
    "dry_run",
    "external_id",
    "record",
    "run",
    "start",
]
