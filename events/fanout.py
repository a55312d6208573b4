"""Fan-out limits: how many deliveries one event makes, how many follow-up events one delivery
emits, and how deep a chain of follow-ups grows.

An agent that emits in a loop (its follow-up routed back to itself, or two agents answering
each other) would otherwise run until someone notices the bill. Each limit ends in a record an
operator sees in the admin, never in silent dropping:

- an event matching more routes than its source's ``max_deliveries_per_event`` (else
  ``SWITCHYARD_MAX_DELIVERIES_PER_EVENT``) gets deliveries for the first that many routes by
  name; one for each other route is stored already dead-lettered with the reason
  (``publish()``), so the event ends dead-lettered and a requeue runs a refused one if the
  operator wants it after all;
- a delivery that emits more follow-ups than its route's ``max_emits`` (else
  ``SWITCHYARD_MAX_EMITS_PER_DELIVERY``), or whose follow-ups would be deeper than its route's
  ``max_depth`` (else ``SWITCHYARD_MAX_EMIT_DEPTH``), is dead-lettered when its result is
  recorded, and none of its follow-ups is published (events.delivery).

The caps on a route or a source are edited in the admin and reach running processes within
seconds: a route's are read with the delivery at each claim, a source's through a memo of
``SWITCHYARD_LOOKUP_CACHE_SECONDS`` (the object a caller passes may be older: a stream
consumer keeps its source for its whole life). Each reason names where its cap came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from events import conf
from handlers.context import Emitted
from handlers.errors import PermanentError

from .lookups import Memo
from .models import Delivery, DeliveryStatus, Event, Route, Source

# How far up the chain the reason names event types (the depth cap is usually far lower).
MAX_CHAIN_SHOWN = 50


class FanOutLimit(PermanentError):
    """A fan-out limit was exceeded: dead-lettered at once, never retried. Its qualified name
    (``events.fanout.FanOutLimit``) is the error class every such dead letter carries."""


ERROR_CLASS = f"{FanOutLimit.__module__}.{FanOutLimit.__qualname__}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


# --- deliveries per event (publish) -------------------------------------------------------


@dataclass(frozen=True)
class Cap:
    """A cap in force and where it came from, for the reason a refusal gives."""

    limit: int
    origin: str


# A source's own cap by id, kept a few seconds per process (events/lookups.py). As a 1-tuple:
# the memo keeps no None, and an empty cap is the common case.
SOURCE_CAPS: Memo[tuple[int | None]] = Memo()


def _source_cap(source_id: int) -> tuple[int | None] | None:
    return Source.objects.filter(id=source_id).values_list("max_deliveries_per_event").first()


def deliveries_cap(source: Source) -> Cap:
    """The source's own cap, as stored a few seconds ago at most, else the setting's."""
    row = SOURCE_CAPS.get(source.pk, lambda: _source_cap(source.pk))
    if row is not None and row[0] is not None:
        return Cap(int(row[0]), "the source's max_deliveries_per_event")
    return Cap(int(conf.MAX_DELIVERIES_PER_EVENT.get()), "SWITCHYARD_MAX_DELIVERIES_PER_EVENT")


def split_routes(routes: Sequence[Route], cap: Cap | None) -> tuple[list[Route], list[Route]]:
    """The routes that get a delivery and the ones refused, in the order given (by name);
    no ``cap``: every route runs."""
    if cap is None:
        return list(routes), []
    return list(routes[: cap.limit]), list(routes[cap.limit :])


def refused_reason(matched: int, cap: Cap) -> str:
    return (
        f"not run: the event matched {matched} routes, over the cap of {cap.limit} deliveries "
        f"per event ({cap.origin}); only the first {cap.limit} by route name run"
    )


def refused_deliveries(
    event: Event, refused: Sequence[Route], matched: int, cap: Cap | None, now: Any
) -> list[Delivery]:
    """Unsaved Delivery rows, dead-lettered from the start, one per refused route."""
    if not refused or cap is None:
        return []
    reason = refused_reason(matched, cap)
    return [
        Delivery(
            event=event,
            route=route,
            handler=route.handler,
            status=DeliveryStatus.DEAD_LETTERED,
            next_attempt_at=now,
            created_at=now,
            finished_at=now,
            error_class=ERROR_CLASS,
            last_error=reason,
        )
        for route in refused
    ]


# --- follow-ups per delivery and chain depth (recording a result) -------------------------


def max_emits(route: Route | None) -> int:
    """The route's own cap, else the setting's (a deleted route: the setting's)."""
    if route is not None and route.max_emits is not None:
        return int(route.max_emits)
    return int(conf.MAX_EMITS_PER_DELIVERY.get())


def max_depth(route: Route | None) -> Cap:
    """The route's own depth cap, else the setting's (a deleted route: the setting's)."""
    if route is not None and route.max_depth is not None:
        return Cap(int(route.max_depth), "the route's max_depth")
    return Cap(int(conf.MAX_EMIT_DEPTH.get()), "SWITCHYARD_MAX_EMIT_DEPTH")


def check_emitted(delivery: Delivery, emitted: Sequence[Emitted], cap: int, depth: Cap) -> None:
    """Raise FanOutLimit when ``emitted`` is over the delivery's caps: more follow-ups than
    ``cap``, or follow-ups deeper than ``depth``."""
    if not emitted:
        return
    if len(emitted) > cap:
        raise FanOutLimit(
            f"emitted {_plural(len(emitted), 'follow-up event')}, over the route's cap of "
            f"{cap}; none was published"
        )
    deeper = delivery.event.depth + 1
    if deeper > depth.limit:
        types = sorted({item.type for item in emitted})
        raise FanOutLimit(
            f"follow-up events would be {deeper} deep, over the cap of {depth.limit} "
            f"({depth.origin}); none was published. Chain: "
            f"{describe_chain(delivery.event)} -> {', '.join(types)} (refused)"
        )


def chain(event: Event) -> list[str]:
    """The event types from the chain's first event (from outside) down to ``event``."""
    types = [event.type]
    parent_delivery = event.emitted_by_id
    while parent_delivery is not None and len(types) < MAX_CHAIN_SHOWN:
        row = (
            Delivery.objects.filter(id=parent_delivery)
            .values_list("event__type", "event__emitted_by_id")
            .first()
        )
        if row is None:  # its emitter was pruned: the chain is shown from there
            break
        types.append(row[0])
        parent_delivery = row[1]
    return types[::-1]


def describe_chain(event: Event) -> str:
    """``chain()`` with repeats folded: "loop.start -> loop.again (8 times)" (the count
    apart from the type, so the dead letters' fingerprint folds it: events.dead_letters)."""
    parts: list[tuple[str, int]] = []
    for type_ in chain(event):
        if parts and parts[-1][0] == type_:
            parts[-1] = (type_, parts[-1][1] + 1)
        else:
            parts.append((type_, 1))
    return " -> ".join(t if n == 1 else f"{t} ({n} times)" for t, n in parts)
