"""Rate limits shared by every worker: a route's own, and one per named resource.

Each limit is a token bucket in Redis (``rate`` tokens a second, at most ``burst`` held),
refilled by the time elapsed on Redis's own clock, so every process on every host sees one
bucket. One Lua script takes a token from all the buckets a delivery is under, or from none:

- a token now: the delivery starts;
- a token later: the bucket lends it (its level goes below zero) and the delivery is told when
  its start is due, so a backlog is spread at the rate instead of every waiting delivery
  asking again at once. The bucket lends at most ``rate x SWITCHYARD_RATE_LIMIT_HORIZON``
  tokens ahead (at least one), so a changed rate reaches every start after that horizon;
- past the horizon: refused; the delivery asks again later.

A delivery that must wait is deferred, not failed (events.transitions.deferral). When Redis
cannot be reached the limits are not applied (fail open, one warning per delivery): a limiter
that is down must not stop every delivery. The limits themselves are read through the
per-process lookup memo (events/lookups.py), so an edit in the admin reaches every worker
within ``SWITCHYARD_LOOKUP_CACHE_SECONDS``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from typing import Any

import redis
from django.conf import settings

from events import conf
from handlers import registry

from .lookups import Memo
from .models import Resource, Route
from .redis_clients import redis_client

log = logging.getLogger("switchyard.pipeline")

KEY_PREFIX = "switchyard:limit:"

# KEYS: one bucket each; ARGV: horizon (s), then rate and burst per bucket.
# Returns {granted (1/0), wait in seconds (a string: Lua numbers come back as integers),
# the index (1-based) of the bucket that set the wait, 0 if none did}.
BUCKET_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local stamp = string.format('%.6f', now)
local horizon = tonumber(ARGV[1])
local levels = {}
local wait, worst, refused = 0, 0, false
for i = 1, #KEYS do
  local rate = tonumber(ARGV[2 * i])
  local burst = tonumber(ARGV[2 * i + 1])
  local state = redis.call('HMGET', KEYS[i], 'tokens', 'at')
  local tokens = tonumber(state[1]) or burst
  local at = tonumber(state[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
  levels[i] = tokens
  local floor = -math.max(1, math.floor(rate * horizon))
  if tokens - 1 < floor then
    refused = true
    local w = (floor + 1 - tokens) / rate
    if w > wait then wait, worst = w, i end
  end
end
if refused then return {0, string.format('%.6f', wait), worst} end
for i = 1, #KEYS do
  local rate = tonumber(ARGV[2 * i])
  local burst = tonumber(ARGV[2 * i + 1])
  local left = levels[i] - 1
  redis.call('HSET', KEYS[i], 'tokens', string.format('%.6f', left), 'at', stamp)
  redis.call('PEXPIRE', KEYS[i], math.ceil((burst - left) / rate * 1000) + 1000)
  if left < 0 and -left / rate > wait then wait, worst = -left / rate, i end
end
return {1, string.format('%.6f', wait), worst}
"""


@dataclass(frozen=True)
class Bucket:
    key: str
    label: str  # what the operator reads: "anthropic", "route github.pr_review <- ..."
    rate: float
    burst: int

    def describe(self) -> str:
        return f"rate limit {self.label}: {self.rate:g}/s"


@dataclass(frozen=True)
class Limits:
    """The buckets a delivery is under, and where its message goes when it is deferred."""

    buckets: tuple[Bucket, ...]
    queue: str
    time_limit: int


@dataclass(frozen=True)
class Verdict:
    """A token now (wait 0), a start reserved ``wait`` seconds from now, or (not reserved)
    none within the horizon: ask again after ``wait``."""

    wait: float
    reserved: bool
    reason: str


def route_bucket(route_id: int, name: str, rate: float, burst: int) -> Bucket:
    return Bucket(f"{KEY_PREFIX}route:{route_id}", f"route {name}", rate, max(1, burst))


def resource_bucket(name: str, rate: float, burst: int) -> Bucket:
    return Bucket(f"{KEY_PREFIX}resource:{name}", name, rate, max(1, burst))


# Per process, a few seconds (events/lookups.py): whether any limit is set at all (when none
# is, a delivery pays nothing for this), and each route's limits.
ACTIVE: Memo[bool] = Memo()
LIMITS: Memo[Limits] = Memo()


def any_limits() -> bool:
    def load() -> bool:
        return (
            Route.objects.filter(rate_limit__isnull=False).exists()
            or Resource.objects.filter(rate__isnull=False).exists()
        )

    return bool(ACTIVE.get("any", load))


def limits_for(route_id: int | None, handler: str) -> Limits:
    found = LIMITS.get((route_id, handler), lambda: _load(route_id, handler))
    assert found is not None
    return found


def _load(route_id: int | None, handler: str) -> Limits:
    route = Route.objects.filter(id=route_id).first() if route_id is not None else None
    buckets: list[Bucket] = []
    if route is not None:
        names = [str(name) for name in route.resources or ()]
        queue, time_limit = route.queue, route.time_limit
        if route.rate_limit is not None:
            buckets.append(route_bucket(route.id, route.name, route.rate_limit, route.rate_burst))
    else:  # the route was deleted: the handler's declarations
        spec = registry.get(handler)
        names = list(spec.resources) if spec else []
        queue = spec.queue if spec else "default"
        time_limit = spec.time_limit if spec else 60
    for resource in Resource.objects.filter(name__in=names, rate__isnull=False).order_by("name"):
        assert resource.rate is not None
        buckets.append(resource_bucket(resource.name, resource.rate, resource.burst))
    return Limits(tuple(buckets), queue, min(time_limit, conf.MAX_TIME_LIMIT.get()))


@cache
def _script(url: str) -> Any:
    return redis_client(url).register_script(BUCKET_SCRIPT)


def take(buckets: tuple[Bucket, ...], *, horizon: float | None = None) -> Verdict | None:
    """One token from each of ``buckets``, or from none; None when Redis cannot be reached
    (the limits are then not applied)."""
    if not buckets:
        return Verdict(0.0, True, "")
    horizon = float(conf.RATE_LIMIT_HORIZON.get()) if horizon is None else horizon
    args: list[Any] = [horizon]
    for bucket in buckets:
        args += [bucket.rate, bucket.burst]
    try:
        granted, wait, worst = _script(settings.REDIS_URL)(
            keys=[bucket.key for bucket in buckets], args=args
        )
    except (redis.RedisError, OSError) as exc:
        log.warning("rate limits not applied: Redis unreachable (%s)", exc)
        return None
    reason = buckets[int(worst) - 1].describe() if int(worst) else ""
    return Verdict(float(wait), bool(int(granted)), reason)
