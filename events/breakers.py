"""A circuit breaker per named resource: while a resource keeps failing, the deliveries that use
it wait (deferred, no attempt spent) instead of burning their retries on it.

The state lives in Redis, shared by every worker, one hash per resource:

- **closed** (no hash): deliveries go. Each attempt of a delivery whose route names the
  resource that fails with a TransientError is a failure, kept in a sorted set for
  ``breaker_window`` seconds; ``breaker_threshold`` of them within the window open it.
- **open** until ``since + cool-down``: every delivery using it is held until then
  (events.transitions.deferral).
- **half-open**: the first delivery asking after the cool-down takes the one probe token
  (atomic, in one Lua script) and runs; the others are held (the probe itself, asking again
  after another limit deferred it, keeps its token). The probe's success closes the
  breaker, its failure opens it again for another cool-down. The token expires after the
  route's time limit plus a margin, so a probe whose worker died does not leave the breaker
  half-open for ever: the next delivery asking becomes the probe.

The settings (``Resource.breaker_*``) are read through the per-process lookup memo, so an edit
in the admin, the operator's override (forced open, forced closed, automatic) included,
reaches every worker within ``SWITCHYARD_LOOKUP_CACHE_SECONDS``. When Redis cannot be reached
the breaker does not hold anything (fail open, like the rate limits).
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import redis
from django.conf import settings
from django.db.models import Q

from handlers import registry

from .lookups import Memo
from .models import BreakerMode, Resource, Route
from .redis_clients import redis_client

log = logging.getLogger("switchyard.pipeline")

KEY_PREFIX = "switchyard:breaker:"
# A probe's token outlives its route's time limit by this much (its lease, its recording).
PROBE_MARGIN = 5
# While a probe runs, the other deliveries ask again this often (at most a cool-down): soon
# after the probe's success, without a deferral a second for each one held.
HALF_OPEN_POLL = 5

# KEYS: state hash. ARGV: probe token lifetime (s), the asking delivery's id, the longest
# hold of a half-open breaker (s). Returns {verdict, wait (s, a string)}: go, probe, open, half.
ALLOW_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local s = redis.call('HMGET', KEYS[1], 'state', 'until', 'probe_until', 'probe')
local state = s[1]
if not state then return {'go', '0'} end
if state == 'open' then
  local u = tonumber(s[2]) or 0
  if now < u then return {'open', string.format('%.6f', u - now)} end
else
  local p = tonumber(s[3]) or 0
  if now < p and s[4] ~= ARGV[2] then
    return {'half', string.format('%.6f', math.min(p - now, tonumber(ARGV[3])))}
  end
end
redis.call('HSET', KEYS[1], 'state', 'half', 'probe', ARGV[2],
  'probe_until', string.format('%.6f', now + tonumber(ARGV[1])))
return {'probe', '0'}
"""

# KEYS: state hash, failures (sorted set). ARGV: 1 success / 0 failure, threshold, window (s),
# cool-down (s), a unique member. Returns the state after it: closed, open or half.
RECORD_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HGET', KEYS[1], 'state')
local cooldown = tonumber(ARGV[4])
if ARGV[1] == '1' then
  if state == 'half' then redis.call('DEL', KEYS[1], KEYS[2]); return 'closed' end
  return state or 'closed'
end
if state == 'open' then return 'open' end
if state == 'half' then
  redis.call('HSET', KEYS[1], 'state', 'open', 'until', string.format('%.6f', now + cooldown))
  redis.call('HINCRBY', KEYS[1], 'failures', 1)
  redis.call('HDEL', KEYS[1], 'probe', 'probe_until')
  return 'open'
end
local window = tonumber(ARGV[3])
redis.call('ZADD', KEYS[2], now, ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
redis.call('PEXPIRE', KEYS[2], math.ceil(window * 1000) + 1000)
local n = redis.call('ZCARD', KEYS[2])
if n >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'state', 'open', 'since', string.format('%.6f', now),
    'until', string.format('%.6f', now + cooldown), 'failures', n, 'window', window)
  redis.call('DEL', KEYS[2])
  return 'open'
end
return 'closed'
"""


@dataclass(frozen=True)
class Breaker:
    """A resource's breaker settings, as read from its row."""

    name: str
    enabled: bool
    mode: str
    threshold: int
    window: int
    cooldown: int

    @property
    def state_key(self) -> str:
        return f"{KEY_PREFIX}{self.name}"

    @property
    def failures_key(self) -> str:
        return f"{KEY_PREFIX}{self.name}:failures"

    @property
    def automatic(self) -> bool:
        return self.enabled and self.mode == BreakerMode.AUTO


@dataclass(frozen=True)
class Verdict:
    """go (closed), probe (this delivery is the half-open breaker's probe), open or half
    (held ``wait`` seconds)."""

    state: str
    wait: float
    reason: str = ""


@dataclass(frozen=True)
class State:
    """What the admin, the dashboard and /metrics show of a breaker."""

    state: str  # closed, open, half-open
    since: datetime | None
    until: datetime | None
    failures: int  # within the window (closed), or that opened it (open, half-open)


def of(resource: Resource) -> Breaker:
    return Breaker(
        resource.name,
        resource.breaker_enabled,
        resource.breaker_mode,
        resource.breaker_threshold,
        resource.breaker_window,
        resource.breaker_cooldown,
    )


# Per process, a few seconds (events/lookups.py): whether any breaker can hold, and the
# breakers of each route.
ACTIVE: Memo[bool] = Memo()
BREAKERS: Memo[tuple[Breaker, ...]] = Memo()


def any_breakers() -> bool:
    def load() -> bool:
        return Resource.objects.filter(
            Q(breaker_enabled=True) | Q(breaker_mode=BreakerMode.OPEN)
        ).exists()

    return bool(ACTIVE.get("any", load))


def breakers_for(route_id: int | None, handler: str) -> tuple[Breaker, ...]:
    found = BREAKERS.get((route_id, handler), lambda: _load(route_id, handler))
    return found or ()


def _load(route_id: int | None, handler: str) -> tuple[Breaker, ...]:
    route = Route.objects.filter(id=route_id).first() if route_id is not None else None
    if route is not None:
        names = [str(name) for name in route.resources or ()]
    else:  # the route was deleted: the handler's declarations
        spec = registry.get(handler)
        names = list(spec.resources) if spec else []
    return tuple(of(r) for r in Resource.objects.filter(name__in=names).order_by("name"))


@cache
def _allow_script(url: str) -> Any:
    return redis_client(url).register_script(ALLOW_SCRIPT)


@cache
def _record_script(url: str) -> Any:
    return redis_client(url).register_script(RECORD_SCRIPT)


def allow(breaker: Breaker, delivery_id: int, probe_ttl: float) -> Verdict:
    """May a delivery using ``breaker``'s resource start now? None of the state changes
    unless the breaker is half-open with no live probe: then this delivery becomes it."""
    if breaker.mode == BreakerMode.CLOSED:
        return Verdict("go", 0.0)
    if breaker.mode == BreakerMode.OPEN:
        return Verdict("open", float(breaker.cooldown), f"circuit forced open: {breaker.name}")
    if not breaker.enabled:
        return Verdict("go", 0.0)
    try:
        verdict, wait = _allow_script(settings.REDIS_URL)(
            keys=[breaker.state_key],
            args=[probe_ttl, delivery_id, min(breaker.cooldown, HALF_OPEN_POLL)],
        )
    except (redis.RedisError, OSError) as exc:
        log.warning("circuit breaker %s not applied: Redis unreachable (%s)", breaker.name, exc)
        return Verdict("go", 0.0)
    verdict = _text(verdict)
    if verdict in ("go", "probe"):
        if verdict == "probe":
            log.info("circuit %s half-open: delivery %s is the probe", breaker.name, delivery_id)
        return Verdict(verdict, 0.0)
    return Verdict(verdict, float(wait), _reason(breaker, verdict))


def _reason(breaker: Breaker, verdict: str) -> str:
    state = read(breaker)
    since = state.since.strftime("%H:%M:%S") if state.since else "?"
    what = "open" if verdict == "open" else "half-open, probing"
    return (
        f"circuit {what}: {breaker.name} since {since}, "
        f"{state.failures} failures in {breaker.window} s"
    )


def record(breaker: Breaker, ok: bool) -> str | None:
    """Count an attempt's result against the breaker (automatic mode only); the state after
    it, or None when nothing was recorded."""
    if not breaker.automatic:
        return None
    try:
        after = _record_script(settings.REDIS_URL)(
            keys=[breaker.state_key, breaker.failures_key],
            args=[
                1 if ok else 0,
                breaker.threshold,
                breaker.window,
                breaker.cooldown,
                uuid.uuid4().hex,
            ],
        )
    except (redis.RedisError, OSError) as exc:
        log.warning("circuit breaker %s: result not recorded (%s)", breaker.name, exc)
        return None
    after = _text(after)
    if not ok and after == "open":
        log.warning("circuit %s open: deliveries using it wait", breaker.name)
    elif ok and after == "closed":
        log.debug("circuit %s closed", breaker.name)
    return after


def read(breaker: Breaker) -> State:
    """The breaker's state as Redis holds it (closed when Redis cannot be reached)."""
    try:
        client = redis_client(settings.REDIS_URL)
        raw: dict[Any, Any] = client.hgetall(breaker.state_key)
        fields = {_text(k): _text(v) for k, v in raw.items()}
        recent = int(client.zcount(breaker.failures_key, time.time() - breaker.window, "+inf"))
    except (redis.RedisError, OSError) as exc:
        log.warning("circuit breaker %s: state not read (%s)", breaker.name, exc)
        return State("closed", None, None, 0)
    if not fields.get("state"):
        return State("closed", None, None, recent)
    return State(
        "open" if fields["state"] == "open" else "half-open",
        _when(fields.get("since")),
        _when(fields.get("until")),
        int(fields.get("failures") or 0),
    )


def reset(breaker: Breaker) -> None:
    """Back to closed with no failures counted (the operator's "Automatic")."""
    try:
        redis_client(settings.REDIS_URL).delete(breaker.state_key, breaker.failures_key)
    except (redis.RedisError, OSError) as exc:
        log.warning("circuit breaker %s not reset: Redis unreachable (%s)", breaker.name, exc)


def effective(breaker: Breaker) -> State:
    """What holds deliveries now: the override, else Redis's state (closed when disabled)."""
    if breaker.mode == BreakerMode.OPEN:
        return State("forced open", None, None, 0)
    if breaker.mode == BreakerMode.CLOSED:
        return State("forced closed", None, None, 0)
    if not breaker.enabled:
        return State("disabled", None, None, 0)
    return read(breaker)


def _when(value: str | None) -> datetime | None:
    return datetime.fromtimestamp(float(value), tz=UTC) if value else None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
