"""A registry of handlers by name, filled by the @handler decorator.

Handlers live in the ``agents`` module of any installed app; ``autodiscover()`` imports them
all when Django starts, so a user's own app adds handlers without touching this project.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.utils.module_loading import autodiscover_modules

from .context import HandlerContext
from .errors import PermanentError, TransientError

__all__ = [
    "HandlerSpec",
    "PermanentError",
    "TransientError",
    "all_handlers",
    "autodiscover",
    "get",
    "handler",
]

HandlerFn = Callable[[HandlerContext], "dict[str, Any] | None"]

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,99}$")
# A source kind as Source.kind stores it (github, stripe, api, schedule, ...).
KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
# A resource name as Resource.name stores it (a slug).
RESOURCE_RE = re.compile(r"^[-a-zA-Z0-9_]{1,64}$")


@dataclass(frozen=True)
class HandlerSpec:
    """A handler and the route defaults its subscriptions start with."""

    name: str
    fn: HandlerFn
    on: tuple[str, ...]
    max_attempts: int
    time_limit: int
    backoff_base: float
    backoff_max: float
    queue: str
    stale_after: int | None
    description: str
    # The source kinds this handler may be given events from; empty: any source. The pipeline
    # holds every route that names the handler to it, whatever the route says.
    sources: tuple[str, ...] = ()
    # Named resources (an API: "anthropic", "github") whose shared rate limits its deliveries
    # are under; the routes made for it start with these (the admin may change them).
    resources: tuple[str, ...] = ()


_registry: dict[str, HandlerSpec] = {}


def handler(
    name: str,
    *,
    on: Iterable[str] = (),
    max_attempts: int = 5,
    time_limit: int = 60,
    backoff_base: float = 2.0,
    backoff_max: float = 600.0,
    queue: str = "default",
    stale_after: int | None = None,
    sources: Iterable[str] = (),
    resources: Iterable[str] = (),
) -> Callable[[HandlerFn], HandlerFn]:
    """Register ``fn(ctx) -> dict | None`` under ``name``.

    ``on`` lists event-type globs (``"github.pull_request.*"``); each becomes a Route row on
    ``migrate`` or ``manage.py sync_routes``, which operators may then tune in the admin.

    ``sources`` lists the source kinds (``"github"``, ``"stripe"``, ``"schedule"``, ...) whose
    events this handler may act on. A handler that reads or acts on a provider's resources
    names that provider's kind, so an event of the same type published through the API (or any
    other source) gets no delivery for it, on any route. Empty: events from any source.

    ``resources`` names what the handler calls (``"anthropic"``, ``"github"``): its routes
    start with them, and each one's shared rate limit (a Resource row, if one has that name)
    applies to its deliveries.
    """
    if not NAME_RE.fullmatch(name):
        raise ValueError(f"handler name {name!r} must match {NAME_RE.pattern}")
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    if time_limit < 1:
        raise ValueError("time_limit must be at least 1 second")
    patterns = (on,) if isinstance(on, str) else tuple(on)
    kinds = (sources,) if isinstance(sources, str) else tuple(sources)
    for kind in kinds:
        if not isinstance(kind, str) or not KIND_RE.fullmatch(kind):
            raise ValueError(f"source kind {kind!r} must match {KIND_RE.pattern}")
    used = (resources,) if isinstance(resources, str) else tuple(resources)
    for resource in used:
        if not isinstance(resource, str) or not RESOURCE_RE.fullmatch(resource):
            raise ValueError(f"resource {resource!r} must match {RESOURCE_RE.pattern}")

    def register(fn: HandlerFn) -> HandlerFn:
        existing = _registry.get(name)
        if (
            existing is not None
            and existing.fn is not fn
            and _qualname(existing.fn) != _qualname(fn)
        ):
            raise ValueError(f"handler {name!r} is already registered by {_qualname(existing.fn)}")
        _registry[name] = HandlerSpec(
            name=name,
            fn=fn,
            on=patterns,
            max_attempts=max_attempts,
            time_limit=time_limit,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            queue=queue,
            stale_after=stale_after,
            description=(fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else "",
            sources=kinds,
            resources=used,
        )
        return fn

    return register


def _qualname(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def get(name: str) -> HandlerSpec | None:
    return _registry.get(name)


def all_handlers() -> list[HandlerSpec]:
    return sorted(_registry.values(), key=lambda spec: spec.name)


def autodiscover() -> None:
    """Import the ``agents`` module of every installed app."""
    autodiscover_modules("agents")
