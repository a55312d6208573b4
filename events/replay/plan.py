"""Which stored events a replay takes, and its dry run: how many deliveries today's routes
would make of them, per handler, and what the agents among those handlers may spend."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from fnmatch import fnmatchcase

from django.db.models import Count, QuerySet
from django.utils import timezone

from .. import extensions
from ..models import Event, EventStatus, Route, Source
from ..routing import matching_routes

# Events read per query while planning or running.
CHUNK = 500
# The most events a replay of ticked events may name (the admin's action).
MAX_SELECTED = 1000


class FilterError(ValueError):
    """Filters that choose nothing sensible. The message says which and why."""


@dataclass(frozen=True)
class Filters:
    """Empty fields match anything. ``type`` ending in ``*`` is a prefix (``github.*``)."""

    source: str = ""
    type: str = ""
    status: str = ""
    received_from: datetime | None = None
    received_to: datetime | None = None
    # Event ids (ticked in the admin's list); empty: no such restriction.
    events: tuple[str, ...] = ()

    def check(self) -> None:
        if self.status and self.status not in EventStatus.values:
            raise FilterError(
                f"status {self.status!r} is not one of {', '.join(EventStatus.values)}"
            )
        if "*" in self.type.rstrip("*") or self.type.strip() != self.type:
            raise FilterError("type must be a type, or a prefix ending in * (github.*)")
        for bound in (self.received_from, self.received_to):
            if bound is not None and bound.tzinfo is None:
                raise FilterError("from and to need a time zone")
        if self.received_from and self.received_to and self.received_from >= self.received_to:
            raise FilterError("from must be before to")
        if len(self.events) > MAX_SELECTED:
            raise FilterError(f"at most {MAX_SELECTED} events may be named one by one")
        for event_id in self.events:
            try:
                uuid.UUID(event_id)
            except ValueError:
                raise FilterError(f"{event_id[:40]!r} is not an event id") from None

    def describe(self) -> str:
        parts = [
            f"{len(self.events)} selected events" if self.events else "",
            f"source {self.source}" if self.source else "",
            f"type {self.type}" if self.type else "",
            f"status {self.status}" if self.status else "",
            f"from {self.received_from:%Y-%m-%d %H:%M:%S %Z}" if self.received_from else "",
            f"to {self.received_to:%Y-%m-%d %H:%M:%S %Z}" if self.received_to else "",
        ]
        return ", ".join(part for part in parts if part) or "every event"


def chosen(filters: Filters) -> QuerySet[Event]:
    """The events ``filters`` choose, oldest first. Copies made by earlier replays are never
    chosen: replaying an original again makes a fresh copy of it, and a copy of a copy would
    run the same event twice over."""
    # Both links: a copy whose original was pruned has lost ``replay_of`` but keeps ``replay``.
    events = Event.objects.filter(replay_of__isnull=True, replay__isnull=True)
    if filters.events:
        events = events.filter(id__in=filters.events)
    if filters.source:
        events = events.filter(source__slug=filters.source)
    if filters.type.endswith("*"):
        events = events.filter(type__startswith=filters.type.rstrip("*"))
    elif filters.type:
        events = events.filter(type=filters.type)
    if filters.status:
        events = events.filter(status=filters.status)
    if filters.received_from is not None:
        events = events.filter(received_at__gte=filters.received_from)
    if filters.received_to is not None:
        events = events.filter(received_at__lt=filters.received_to)
    return events.order_by("received_at", "id")


@dataclass(frozen=True)
class AgentEstimate:
    handler: str
    deliveries: int
    cost: extensions.RunCost | None  # None: the agent has no recent runs

    @property
    def tokens(self) -> int | None:
        return None if self.cost is None else self.cost.tokens * self.deliveries

    @property
    def cost_usd(self) -> Decimal | None:
        return None if self.cost is None else self.cost.cost_usd * self.deliveries


@dataclass(frozen=True)
class Plan:
    events: int
    deliveries: dict[str, int]  # per handler, from today's enabled routes
    agents: list[AgentEstimate] = field(default_factory=list)
    # When the dry run began: without a "to" filter, the replay takes no event received later.
    as_of: datetime = field(default_factory=timezone.now)

    @property
    def total_deliveries(self) -> int:
        return sum(self.deliveries.values())

    @property
    def estimated_tokens(self) -> int | None:
        """The agents' tokens, summed over those with recent runs; None if none has any."""
        known = [agent.tokens for agent in self.agents if agent.tokens is not None]
        return sum(known) if known else None

    @property
    def estimated_cost_usd(self) -> Decimal | None:
        known = [agent.cost_usd for agent in self.agents if agent.cost_usd is not None]
        return sum(known, Decimal(0)) if known else None

    @property
    def without_recent_runs(self) -> list[str]:
        return [agent.handler for agent in self.agents if agent.cost is None]


def dry_run(filters: Filters) -> Plan:
    """Count the events ``filters`` choose and the deliveries each would get from the routes
    enabled now (events.routing.matching_routes, as publish() will), then estimate the agents'
    tokens and cost from their recent runs (events.extensions.run_costs).

    Events are counted per (source, type); only where an enabled route with a payload filter
    could take the type are their payloads read, so a large replay is mostly one GROUP BY."""
    filters.check()
    as_of = timezone.now()
    if filters.received_to is None:
        filters = replace(filters, received_to=as_of)
    events = chosen(filters)
    sources = {source.pk: source for source in Source.objects.all()}
    filtered_globs = list(
        Route.objects.filter(enabled=True)
        .exclude(payload_filter={})
        .values_list("event_type", flat=True)
    )
    total = 0
    deliveries: Counter[str] = Counter()
    groups = events.order_by().values("source_id", "type").annotate(n=Count("id"))
    for group in groups.order_by("source_id", "type"):
        source, type, n = sources[group["source_id"]], group["type"], group["n"]
        total += n
        if not any(fnmatchcase(type, glob) for glob in filtered_globs):
            for route in matching_routes(type, {}, source=source, cached=True):
                deliveries[route.handler] += n
            continue
        payloads = events.filter(source_id=source.pk, type=type).values_list("payload", flat=True)
        for payload in payloads.iterator(chunk_size=CHUNK):
            for route in matching_routes(type, payload, source=source, cached=True):
                deliveries[route.handler] += 1
    costs = extensions.run_costs(sorted(deliveries))
    agents = [
        AgentEstimate(handler=name, deliveries=deliveries[name], cost=costs[name])
        for name in sorted(costs)
    ]
    return Plan(
        events=total, deliveries=dict(sorted(deliveries.items())), agents=agents, as_of=as_of
    )
