"""Round trips per delivery for each flow row, counted in process: the figure noise cannot move.

On a shared 2-core machine a timed ratio moves by tens of percent from one repeat to the next,
so an extra query per delivery (about a tenth of a no-op delivery) hides in it. Here each row's
deliveries are run by ``events.delivery.execute`` in this process, as a worker thread runs them,
counting the SQL statements sent to PostgreSQL (through Django's cursor: the BEGIN and COMMIT
of a transaction are not among them) and the commands sent to Redis (a Lua script is one).
Run with the worker stopped: the messages publish() sends are deleted unread. Import only after
Django is set up.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.db import connection, transaction

from events.delivery import execute
from events.models import Delivery, DeliveryStatus
from events.publish import publish
from events.redis_clients import redis_client

from .data import bench_source, clean_slate
from .delivery import QUEUE
from .services import BenchError


@dataclass(frozen=True)
class Trips:
    sql: float  # statements per delivery
    redis: float  # commands per delivery


@dataclass
class _Counter:
    sql: int = 0
    redis: int = 0


@contextmanager
def counting() -> Iterator[_Counter]:
    """Count this thread's SQL statements and the pipeline Redis client's commands."""
    counter = _Counter()
    client = redis_client(settings.REDIS_URL)
    send = client.execute_command

    def sql(execute: Any, *args: Any) -> Any:
        counter.sql += 1
        return execute(*args)

    def command(*args: Any, **options: Any) -> Any:
        counter.redis += 1
        return send(*args, **options)

    # An attribute of the instance, found before the class's method (scripts call it too).
    client.execute_command = command  # type: ignore[method-assign]
    try:
        with connection.execute_wrapper(sql):
            yield counter
    finally:
        del client.execute_command


def count(case: Any, n: int, broker: redis.Redis, prepare: Any) -> Trips:
    """Publish ``n`` events of ``case`` (a bench.flow.Case), then run their deliveries here,
    counting; ``prepare(case, n)`` sets up what the handler reads (its state)."""
    source = bench_source()
    clean_slate(broker, queues=(QUEUE,))
    prepare(case, n)
    with transaction.atomic():
        for i in range(n):
            publish(source=source, type=case.type, payload=case.payload(i, "count"),
                    external_id=f"count-{i}", partition_key=case.partition_key(i))  # fmt: skip
    broker.delete(QUEUE)
    ids = list(Delivery.objects.order_by("id").values_list("id", flat=True))
    # The first one outside the count: it fills the lookup memo, read once per memo period.
    execute(ids[0], worker="bench-count")
    with counting() as counter:
        for delivery_id in ids[1:]:
            execute(delivery_id, worker="bench-count")
    done = Delivery.objects.filter(status=DeliveryStatus.SUCCEEDED, total_attempts=1).count()
    if done != n:
        raise BenchError(f"{case.key}: {done} of {n} deliveries succeeded in process")
    return Trips(counter.sql / (n - 1), counter.redis / (n - 1))
