"""Which Celery broker `manage.py up` uses: Redis when it answers, else a SQLite file.

Production runs on RabbitMQ (recommended: a dead worker's messages come back at once) or
Redis. For `make demo` and `make run` on a machine without Redis, kombu's
SQLAlchemy transport on a file under var/ keeps web, worker and beat talking to each other;
the database stays the source of truth either way, so the slower broker only costs latency.

No Django imports at module level: settings may import this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis

PING_TIMEOUT = 1.0
AMQP_SCHEMES = ("amqp", "amqps", "pyamqp")
SQLITE_BROKER_FILE = "broker.sqlite3"


def redis_answers(redis_url: str, *, timeout: float = PING_TIMEOUT) -> str | None:
    """PING the Redis at ``redis_url``. Returns None when it answers, else why it did not."""
    try:
        client = redis.Redis.from_url(
            redis_url, socket_connect_timeout=timeout, socket_timeout=timeout
        )
    except ValueError as exc:
        return f"REDIS_URL is not a Redis URL: {exc}"
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        return str(exc).rstrip(".") or exc.__class__.__name__
    finally:
        client.close()
    return None


def sqlite_broker_url(var_dir: Path) -> str:
    """kombu's SQLAlchemy transport on ``var_dir/broker.sqlite3`` (absolute path)."""
    return f"sqla+sqlite:///{(var_dir / SQLITE_BROKER_FILE).resolve()}"


def choose_broker_url(
    redis_url: str, *, var_dir: Path | None = None, timeout: float = PING_TIMEOUT
) -> tuple[str, str]:
    """Return ``(broker_url, description)``: Redis if it answers a PING, else the SQLite file.

    The description is for people (it names the broker and, for the fallback, why); it never
    contains a password from the URL.
    """
    problem = redis_answers(redis_url, timeout=timeout)
    if problem is None:
        return redis_url, f"Redis at {redact_url(redis_url)}"
    if var_dir is None:
        from django.conf import settings

        var_dir = Path(settings.VAR_DIR)
    url = sqlite_broker_url(var_dir)
    path = url.removeprefix("sqla+sqlite:///")
    return url, (
        f"SQLite file {path} through kombu's SQLAlchemy transport "
        f"(no Redis answered at {redact_url(redis_url)}: {problem}). "
        "Fine for a demo; use Redis in production."
    )


def transport_options(broker_url: str, *, visibility_timeout: int) -> dict[str, Any]:
    """Broker transport options that suit the transport in ``broker_url``.

    The Redis options (visibility timeout, socket timeouts) must not reach the SQLAlchemy
    transport: it passes every option on to ``create_engine()``, which refuses unknown ones.
    """
    scheme = urlsplit(broker_url).scheme.lower()
    if scheme in AMQP_SCHEMES:
        # RabbitMQ: the broker confirms each message is stored before publish returns, and
        # gives back a consumer's unacknowledged messages as soon as its connection drops (no
        # visibility timeout to tune). Queues are durable, messages persistent (Celery's
        # defaults).
        return {"confirm_publish": True}
    if scheme.startswith("sqla+") or scheme.startswith("sqlalchemy+"):
        if "sqlite" in scheme:
            # Web, worker and beat share the file: wait for a lock rather than fail.
            return {"connect_args": {"timeout": 20}}
        return {}
    return {
        "visibility_timeout": visibility_timeout,
        "socket_connect_timeout": 5,
        "socket_timeout": 30,
    }


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    userinfo = f"{parts.username or ''}:***"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{netloc}"))
