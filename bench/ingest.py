"""Ingest benchmarks, in this process: publish() against a bare insert, and the webhook view
against the cheapest view there is. Import only after Django is set up.
"""

from __future__ import annotations

import gc
import json

import redis
from django.test import Client
from django.utils import timezone

from events.models import Delivery, Event, Source
from events.publish import publish
from events.webhooks.hmac import HEADER, sign

from .data import INGEST_TYPE, SECRET, bench_source, clean_slate, payload
from .measure import Comparison, Memory, PeakRss, timed
from .services import BenchError

INGEST_QUEUE = "default"
# Baseline and candidate alternate in chunks this size, so a burst of load from elsewhere on
# the machine lands on both sides instead of on one whole run.
CHUNK = 10


def say(message: str) -> None:
    print(f"  {message}", flush=True)


# --- the operations being timed -----------------------------------------------------------------


def bare_inserts(source: Source, numbers: range, prefix: str) -> None:
    """The baseline: the same Event rows, one autocommitted INSERT each, nothing else."""
    for i in numbers:
        now = timezone.now()
        Event.objects.create(
            source=source,
            external_id=f"{prefix}-{i}",
            type=INGEST_TYPE,
            payload=payload(i),
            received_at=now,
            status_changed_at=now,
        )


def publishes(source: Source, numbers: range, prefix: str, *, expect_created: bool) -> None:
    for i in numbers:
        result = publish(
            source=source, type=INGEST_TYPE, payload=payload(i), external_id=f"{prefix}-{i}"
        )
        if result.created is not expect_created:
            raise BenchError(f"publish of {prefix}-{i}: created={result.created}")


def _check_published(broker: redis.Redis, n: int, *, bare: int = 0) -> None:
    """``n`` published events (plus ``bare`` inserted ones), each with 2 deliveries and 2 messages
    on the queue: a fast wrong answer is no answer."""
    events, deliveries = Event.objects.count(), Delivery.objects.count()
    queued = int(broker.llen(INGEST_QUEUE))
    if (events, deliveries, queued) != (n + bare, 2 * n, 2 * n):
        raise BenchError(
            f"after publishing {n} events: {events} events, {deliveries} deliveries, "
            f"{queued} messages queued; expected {n + bare}, {2 * n}, {2 * n}"
        )


# --- the benchmarks ---------------------------------------------------------------------------


def _chunks(n: int) -> list[range]:
    return [range(i, min(i + CHUNK, n)) for i in range(0, n, CHUNK)]


def run_publish(broker: redis.Redis, n: int, repeats: int) -> tuple[Comparison, Comparison]:
    source = bench_source()
    fresh = Comparison(
        key="ingest.publish",
        title="publish() of a new event (2 deliveries, enqueued on commit)",
        unit="events",
        count=n,
        baseline="bare insert",
        candidate="publish",
    )
    dup = Comparison(
        key="ingest.duplicate",
        title="publish() of a duplicate (same source + external id)",
        unit="events",
        count=n,
        baseline="bare insert",
        candidate="duplicate",
    )
    warm = min(n, 100)
    say(f"warm-up: {warm} of each")
    clean_slate(broker, queues=(INGEST_QUEUE,))
    bare_inserts(source, range(warm), "warm-b")
    publishes(source, range(warm), "warm-p", expect_created=True)
    publishes(source, range(warm), "warm-p", expect_created=False)

    for r in range(repeats):
        clean_slate(broker, queues=(INGEST_QUEUE,))
        b = p = d = 0.0
        for c, chunk in enumerate(_chunks(n)):
            # Alternate which side goes first, so neither always follows the other.
            if c % 2 == 0:
                b += timed(bare_inserts, source, chunk, f"b{r}")
            p += timed(publishes, source, chunk, f"p{r}", expect_created=True)
            d += timed(publishes, source, chunk, f"p{r}", expect_created=False)
            if c % 2 == 1:
                b += timed(bare_inserts, source, chunk, f"b{r}")
        _check_published(broker, n, bare=n)
        fresh.add(b, p)
        dup.add(b, d)
        say(
            f"repeat {r + 1}/{repeats}: bare insert {n / b:,.0f}/s, publish {n / p:,.0f}/s "
            f"({p / b:.2f}x), duplicate {n / d:,.0f}/s ({d / b:.2f}x)"
        )
    return fresh, dup


def run_http(broker: redis.Redis, n: int, repeats: int) -> Comparison:
    source = bench_source()
    result = Comparison(
        key="ingest.http",
        title="signed webhook POST to /hooks/bench (test Client, in-process)",
        unit="requests",
        count=n,
        baseline="GET /healthz",
        candidate="POST /hooks",
    )
    client = Client(HTTP_HOST="127.0.0.1")
    url = f"/hooks/{source.slug}"

    def signed(prefix: str, numbers: range) -> list[tuple[bytes, str]]:
        # Signing is the sender's work: done before the clock starts.
        out = []
        for i in numbers:
            raw = json.dumps({"type": INGEST_TYPE, "id": f"{prefix}-{i}", "payload": payload(i)})
            out.append((raw.encode(), sign(SECRET, raw.encode())))
        return out

    def posts(bodies: list[tuple[bytes, str]]) -> None:
        for raw, signature in bodies:
            response = client.post(
                url, data=raw, content_type="application/json", headers={HEADER: signature}
            )
            if response.status_code != 202:
                raise BenchError(
                    f"POST {url} answered {response.status_code}: {response.content!r}"
                )

    def gets(count: int) -> None:
        for _ in range(count):
            response = client.get("/healthz")
            if response.status_code != 200:
                raise BenchError(f"GET /healthz answered {response.status_code}")

    warm = min(n, 100)
    say(f"warm-up: {warm} of each")
    clean_slate(broker, queues=(INGEST_QUEUE,))
    gets(warm)
    posts(signed("warm", range(warm)))

    for r in range(repeats):
        clean_slate(broker, queues=(INGEST_QUEUE,))
        g = p = 0.0
        for c, chunk in enumerate(_chunks(n)):
            bodies = signed(f"h{r}", chunk)
            if c % 2 == 0:
                g += timed(gets, len(chunk))
            p += timed(posts, bodies)
            if c % 2 == 1:
                g += timed(gets, len(chunk))
        _check_published(broker, n)
        result.add(g, p)
        say(f"repeat {r + 1}/{repeats}: GET /healthz {n / g:,.0f}/s, POST /hooks {n / p:,.0f}/s "
            f"({p / g:.2f}x)")  # fmt: skip
    return result


def run_memory(broker: redis.Redis, n: int) -> Memory:
    """Peak RSS of this process while it publishes ``n`` events, against its RSS just before."""
    source = bench_source()
    clean_slate(broker, queues=(INGEST_QUEUE,))
    gc.collect()
    with PeakRss() as peak:
        publishes(source, range(n), "mem", expect_created=True)
    _check_published(broker, n)
    say(f"bench process RSS {peak.before_kib / 1024:.1f} MiB before, "
        f"{peak.peak_kib / 1024:.1f} MiB at the peak of publishing {n:,} events")  # fmt: skip
    return Memory(
        key="memory.ingest",
        title=f"bench process peak RSS while publishing {n:,} events",
        baseline="before",
        candidate="peak",
        before_kib=peak.before_kib,
        after_kib=peak.peak_kib,
    )
