"""The beat lock: a lease in Redis that one beat process holds while it sends schedules.

Two beats started by mistake would each send every tick (celery#2856, django-celery-beat#337).
With this lock only the holder sends; the other waits and takes over once the holder has not
renewed the lease for ``ttl`` seconds (it stopped, died, or lost Redis). The holder renews on
every scheduler tick and releases the lease when it stops cleanly.

A lease can lapse while its holder is paused (a long GC pause, a frozen VM) and the holder may
then send once more before it notices: the tick key (events.schedules.ticks) catches that.
"""

from __future__ import annotations

import os
import socket
import uuid
from urllib.parse import urlsplit

import redis

KEY = "switchyard:beat-lock"
# Redis commands must not hang beat's loop when Redis does.
SOCKET_TIMEOUT = 5.0

# Renew only our own lease, release only our own lease: compare and act in one step.
RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


class BeatLock:
    def __init__(self, client: redis.Redis, *, ttl: float, key: str = KEY) -> None:
        self.client = client
        self.ttl_ms = max(int(ttl * 1000), 1)
        self.key = key
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._renew = client.register_script(RENEW)
        self._release = client.register_script(RELEASE)

    def hold(self) -> bool:
        """Renew our lease, or take it if nobody holds it. Raises ``redis.RedisError``."""
        if self._renew(keys=[self.key], args=[self.token, self.ttl_ms]):
            return True
        return bool(self.client.set(self.key, self.token, nx=True, px=self.ttl_ms))

    def holder(self) -> str | None:
        value = self.client.get(self.key)
        return value.decode() if isinstance(value, bytes) else value

    def release(self) -> bool:
        return bool(self._release(keys=[self.key], args=[self.token]))


def lock_for(broker_url: str, *, ttl: float, redis_url: str = "") -> BeatLock | None:
    """A lock on the broker's Redis, or on ``redis_url`` when the broker is RabbitMQ (Redis is
    still the project's cache and limiter); None on the SQLite fallback of ``make demo``,
    which runs a single beat."""
    scheme = urlsplit(broker_url).scheme
    if scheme in {"redis", "rediss"}:
        url = broker_url
    elif scheme in {"amqp", "amqps", "pyamqp"} and redis_url:
        url = redis_url
    else:
        return None
    client = redis.Redis.from_url(
        url, socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=SOCKET_TIMEOUT
    )
    return BeatLock(client, ttl=ttl)
