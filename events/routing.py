"""Which handlers an event goes to: type globs, payload filters, the sources a route and its
handler accept, and route sync from code."""

from __future__ import annotations

import logging
from fnmatch import fnmatchcase
from typing import Any

from handlers import registry

from .lookups import Memo
from .models import Route, Source

log = logging.getLogger("switchyard.pipeline")

_MISSING = object()


def _lookup(payload: Any, dotted: str) -> Any:
    value = payload
    for part in dotted.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _same(actual: Any, expected: Any) -> bool:
    """JSON equality. Python's ``==`` says ``0 == False`` and ``1 == True``; JSON does not."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(actual, dict) and isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(
            _same(actual[key], expected[key]) for key in actual
        )
    if isinstance(actual, list) and isinstance(expected, list):
        return len(actual) == len(expected) and all(map(_same, actual, expected))
    return bool(actual == expected)


def payload_matches(payload: Any, payload_filter: dict[str, Any]) -> bool:
    """Every ``{"dotted.path": expected}`` entry must hold; a list means "any of these"."""
    for path, expected in (payload_filter or {}).items():
        actual = _lookup(payload, path)
        if actual is _MISSING:
            return False
        if isinstance(expected, list):
            if not any(_same(actual, option) for option in expected):
                return False
        elif not _same(actual, expected):
            return False
    return True


def _candidates_sql() -> str:
    """A WHERE clause that keeps every route whose glob could match the type given as its one
    parameter, and few others: the glob as a LIKE pattern (``*`` -> ``%``, ``?`` -> ``_``),
    or any glob with a ``[...]`` class (which LIKE cannot express). It is a superset: ``%`` and
    ``_`` are wildcards to LIKE, and SQLite's LIKE ignores case; fnmatchcase decides after.
    Without it every publish read every enabled route."""
    column = f'"{Route._meta.db_table}"."event_type"'
    return f"(%s LIKE REPLACE(REPLACE({column}, '*', '%%'), '?', '_') OR {column} LIKE '%%[%%')"


# Candidate routes by (database, event type), kept a few seconds per process for publish()
# (events/lookups.py): an edited route takes effect within SWITCHYARD_LOOKUP_CACHE_SECONDS.
CANDIDATES: Memo[list[Route]] = Memo()


def _candidates(event_type: str, using: str) -> list[Route]:
    return list(
        Route.objects.using(using)
        .filter(enabled=True)
        .extra(where=[_candidates_sql()], params=[event_type])  # noqa: S610 - no user SQL
        .order_by("name")
    )


def handler_accepts(handler_name: str, kind: str) -> bool:
    """The handler's own @handler(sources=...) rule: a handler that acts on a provider's
    resources takes events only from sources of that provider's kind, on any route."""
    spec = registry.get(handler_name)
    return spec is None or not spec.sources or kind in spec.sources


def accepts(route: Route, source: Source) -> bool:
    """Whether an event from ``source`` may go down ``route``: the route's rule and its
    handler's."""
    return route.accepts_source(source.kind, source.slug) and handler_accepts(
        route.handler, source.kind
    )


def matching_routes(
    event_type: str,
    payload: Any,
    *,
    source: Source,
    using: str = "default",
    cached: bool = False,
) -> list[Route]:
    """Enabled routes for this event from ``source``, at most one per handler (the first by
    name that accepts it wins). ``cached``: the route rows may be a few seconds old (publish()
    on the hot path)."""
    chosen: dict[str, Route] = {}
    if cached:
        candidates = (
            CANDIDATES.get((using, event_type), lambda: _candidates(event_type, using)) or []
        )
    else:
        candidates = _candidates(event_type, using)
    for route in candidates:
        if route.handler in chosen:
            continue
        if (
            fnmatchcase(event_type, route.event_type)
            and accepts(route, source)
            and payload_matches(payload, route.payload_filter)
        ):
            chosen[route.handler] = route
    return list(chosen.values())


def route_name(handler_name: str, pattern: str) -> str:
    return f"{handler_name} <- {pattern}"


def sync_routes(*, using: str = "default") -> list[Route]:
    """Create a Route for every declared subscription that has none yet.

    Existing routes are left as they are, so what operators tuned in the admin survives a
    deploy. Returns the routes created.
    """
    created: list[Route] = []
    for spec in registry.all_handlers():
        for pattern in spec.on:
            route, was_created = Route.objects.using(using).get_or_create(
                name=route_name(spec.name, pattern),
                defaults={
                    "event_type": pattern,
                    "handler": spec.name,
                    "managed": True,
                    "max_attempts": spec.max_attempts,
                    "time_limit": spec.time_limit,
                    "backoff_base": spec.backoff_base,
                    "backoff_max": spec.backoff_max,
                    "queue": spec.queue,
                    "stale_after": spec.stale_after,
                    "source_kinds": list(spec.sources),
                    "resources": list(spec.resources),
                },
            )
            if was_created:
                created.append(route)
                log.info("route created: %s", route.name)
    return created
