"""Schedules: django-celery-beat periodic tasks that publish ``schedule.<name>`` events.

Operators create a periodic task running ``events.schedule`` (the admin's "Schedules" list does
this for them); beat sends one message per tick; the task (``tasks``) records the tick and, unless
it is a duplicate, stale, or overlapping a run still in flight, publishes an event into the
``schedules`` source. Routes on ``schedule.<name>`` point the ticks at handlers.

- ``timing``: the due time of a tick, computed as beat decides it is due.
- ``scheduler``: beat's scheduler: puts the due time on each message, lets one beat send.
- ``ticks``: what a tick does (plain functions, called by the task and by tests).
- ``defaults``: the schedules ``manage.py install_schedules`` installs.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

SCHEDULE_TASK = "events.schedule"
SOURCE_SLUG = "schedules"
SOURCE_KIND = "schedule"
EVENT_PREFIX = "schedule."
# Message headers the scheduler adds (Celery hands custom headers to the task as request
# attributes): the run time the tick stands for, and when beat sent it (ISO 8601, UTC).
DUE_HEADER = "switchyard_due"
SENT_HEADER = "switchyard_sent"
# A schedule's name becomes part of an event type and of the tick key ("<name>@<due>").
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
NAME_HELP = "1-100 letters, digits and . _ - (starting with a letter or digit)"


def event_type(name: str) -> str:
    return f"{EVENT_PREFIX}{name}"


def tick_key(name: str, due_at: datetime) -> str:
    """The tick's identity and its event's external id: the same for every message sent for
    this run time, by whichever beat."""
    return f"{name}@{due_at.astimezone(UTC).isoformat()}"
