"""The pipeline's settings, each read through here (``conf.LEASE_SECONDS.get()``) and checked
by ``manage.py check``. settings.py sets the few that also configure Django or Celery (the
sweep interval and queue, the time limit and backoff caps behind the broker's visibility
timeout, the beat lock); the rest come from the environment variable of the same name."""

from __future__ import annotations

from agents_project.appsettings import (
    Setting,
    at_least,
    between,
    integer,
    number,
    register,
    text,
)

MAX_BODY_BYTES = Setting("SWITCHYARD_MAX_BODY_BYTES", 1024 * 1024, integer, at_least(1))
# Seconds a webhook or API body may take to arrive once its headers have; a client that
# trickles it is answered 408 and its web thread freed (events/views/deadline.py). 0: no limit.
BODY_READ_SECONDS = Setting("SWITCHYARD_BODY_READ_SECONDS", 10.0, number, at_least(0))
# Verified webhook requests a minute per source; 0 is no limit (a source's settings may turn
# one on). Off by default: GitHub does not redeliver a refused webhook.
HOOK_RATE_LIMIT = Setting("SWITCHYARD_HOOK_RATE_LIMIT", 0, integer, at_least(0))
# Failed API token checks a minute from one client address before it is answered 429.
API_AUTH_FAILURES_PER_MINUTE = Setting(
    "SWITCHYARD_API_AUTH_FAILURES_PER_MINUTE", 20, integer, at_least(0)
)
# The header a trusted reverse proxy puts the client's address in; empty: the socket's peer.
CLIENT_IP_HEADER = Setting("SWITCHYARD_CLIENT_IP_HEADER", "", text)
# Seconds a web process keeps a source and the routes of an event type (events/lookups.py).
LOOKUP_CACHE_SECONDS = Setting("SWITCHYARD_LOOKUP_CACHE_SECONDS", 5.0, number, at_least(0))
# Seconds ahead a rate limit reserves starts for deliveries that must wait (events/limits.py):
# a changed rate reaches every start after this; a backlog longer than it asks again later.
RATE_LIMIT_HORIZON = Setting("SWITCHYARD_RATE_LIMIT_HORIZON", 10.0, number, at_least(0))
# Seconds a delivery held by its route's concurrency cap or key order waits before asking
# again if no wake-up comes first (events/transitions/flow.py).
FLOW_RECHECK_SECONDS = Setting("SWITCHYARD_FLOW_RECHECK_SECONDS", 30.0, number, at_least(0.1))
# Upper bounds for what a route may ask for (settings.py derives Redis's visibility timeout).
MAX_TIME_LIMIT = Setting("SWITCHYARD_MAX_TIME_LIMIT", 1800, integer, at_least(1))
MAX_BACKOFF = Setting("SWITCHYARD_MAX_BACKOFF", 3600, integer, at_least(1))
# A running delivery's lease, renewed a third of it apart while the handler runs.
LEASE_SECONDS = Setting("SWITCHYARD_LEASE_SECONDS", 30.0, number, at_least(1))
# How often beat runs the sweeper (settings.py puts it in the beat schedule).
SWEEP_INTERVAL = Setting("SWITCHYARD_SWEEP_INTERVAL", 15.0, number, at_least(0.1))
# Seconds past its due time a waiting delivery's message may be before the sweeper re-sends.
SWEEP_GRACE = Setting("SWITCHYARD_SWEEP_GRACE", 30.0, number, at_least(0))
SWEEP_BATCH = Setting("SWITCHYARD_SWEEP_BATCH", 500, integer, at_least(1))
# The queue beat sends the sweeper to; at least one worker must consume it.
MAINTENANCE_QUEUE = Setting("SWITCHYARD_MAINTENANCE_QUEUE", "maintenance", text)
# Public base URL, used when printing endpoint URLs.
PUBLIC_URL = Setting("SWITCHYARD_PUBLIC_URL", "http://127.0.0.1:8000", text)
# Seconds the one-beat lock lasts unless renewed (events/schedules/lock.py).
BEAT_LOCK_TTL = Setting("SWITCHYARD_BEAT_LOCK_TTL", 30.0, number, at_least(1))
# Seconds a schedule's message may wait for a worker before it expires.
SCHEDULE_EXPIRES = Setting("SWITCHYARD_SCHEDULE_EXPIRES", 600, integer, at_least(1))

# /readyz answers 503 when a due delivery has waited longer than this for a worker.
READY_MAX_WAIT = Setting("SWITCHYARD_READY_MAX_WAIT", 300.0, number, at_least(1))

# Refused webhook and API requests are kept this many days (events/request_log.py) ...
REQUEST_LOG_DAYS = Setting("SWITCHYARD_REQUEST_LOG_DAYS", 7.0, number, at_least(0))
# ... and at most this many are recorded a minute (a flood of bad requests writes no more).
REQUEST_LOG_PER_MINUTE = Setting("SWITCHYARD_REQUEST_LOG_PER_MINUTE", 600, integer, at_least(0))

# A replay of more events than this asks for a confirmation (the admin's checkbox, the
# command's --yes).
REPLAY_CONFIRM_ABOVE = Setting("SWITCHYARD_REPLAY_CONFIRM_ABOVE", 100, integer, at_least(0))

# Fan-out limits (events/fanout.py): deliveries one event may make, follow-up events one
# delivery may emit (a route's max_emits overrides it), and how deep a chain of follow-ups may
# grow (an external event is depth 0, its follow-ups 1, theirs 2, ...).
# A source's max_deliveries_per_event and a route's max_depth override the first and the last.
MAX_DELIVERIES_PER_EVENT = Setting("SWITCHYARD_MAX_DELIVERIES_PER_EVENT", 50, integer, at_least(1))
MAX_EMITS_PER_DELIVERY = Setting("SWITCHYARD_MAX_EMITS_PER_DELIVERY", 20, integer, at_least(0))
# Event.depth is a small integer: a chain can be at most 32767 deep.
MAX_EMIT_DEPTH = Setting("SWITCHYARD_MAX_EMIT_DEPTH", 8, integer, between(0, 32766))

# The largest ``ctx.state`` a handler may leave, in bytes of compact JSON (events/state.py); a
# run that leaves more is dead-lettered with the sizes in its error, and nothing is written.
STATE_MAX_BYTES = Setting("SWITCHYARD_STATE_MAX_BYTES", 64 * 1024, integer, at_least(2))

register(
    "the pipeline (events)",
    [
        MAX_BODY_BYTES,
        BODY_READ_SECONDS,
        HOOK_RATE_LIMIT,
        API_AUTH_FAILURES_PER_MINUTE,
        CLIENT_IP_HEADER,
        LOOKUP_CACHE_SECONDS,
        RATE_LIMIT_HORIZON,
        FLOW_RECHECK_SECONDS,
        MAX_TIME_LIMIT,
        MAX_BACKOFF,
        LEASE_SECONDS,
        SWEEP_INTERVAL,
        SWEEP_GRACE,
        SWEEP_BATCH,
        MAINTENANCE_QUEUE,
        PUBLIC_URL,
        BEAT_LOCK_TTL,
        SCHEDULE_EXPIRES,
        READY_MAX_WAIT,
        REQUEST_LOG_DAYS,
        REQUEST_LOG_PER_MINUTE,
        REPLAY_CONFIRM_ABOVE,
        MAX_DELIVERIES_PER_EVENT,
        MAX_EMITS_PER_DELIVERY,
        MAX_EMIT_DEPTH,
        STATE_MAX_BYTES,
    ],
)


def public_url() -> str:
    return str(PUBLIC_URL.get()).rstrip("/")
