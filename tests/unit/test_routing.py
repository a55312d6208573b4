"""Routing: type globs, payload filters, the sources a route and its handler accept, one
delivery per handler."""

from __future__ import annotations

from typing import Any

import pytest

from events.models import Route, Source
from events.routing import matching_routes, payload_matches
from handlers import registry

PAYLOAD = {
    "action": "opened",
    "pull_request": {"draft": False, "labels": ["bug", "urgent"], "user": {"login": "ann"}},
    "count": 0,
    "nothing": None,
}


@pytest.mark.parametrize(
    ("payload_filter", "expected"),
    [
        pytest.param({}, True, id="empty-filter"),
        pytest.param({"action": "opened"}, True, id="top-level"),
        pytest.param({"action": "closed"}, False, id="top-level-differs"),
        pytest.param({"pull_request.user.login": "ann"}, True, id="dotted"),
        pytest.param({"pull_request.user.login": "bo"}, False, id="dotted-differs"),
        pytest.param({"pull_request.labels.1": "urgent"}, True, id="list-index"),
        pytest.param({"pull_request.labels.2": "urgent"}, False, id="list-index-out-of-range"),
        pytest.param({"action": ["closed", "opened"]}, True, id="any-of"),
        pytest.param({"action": ["closed", "merged"]}, False, id="none-of"),
        pytest.param({"action": "opened", "pull_request.draft": True}, False, id="all-must-hold"),
        pytest.param({"action": "opened", "pull_request.draft": False}, True, id="all-hold"),
        pytest.param({"missing": None}, False, id="missing-path-is-not-null"),
        pytest.param({"pull_request.user.login.x": "ann"}, False, id="path-through-a-string"),
        pytest.param({"nothing": None}, True, id="explicit-null"),
        pytest.param({"count": 0}, True, id="zero"),
        pytest.param({"count": 0.0}, True, id="zero-as-float"),
        pytest.param({"count": False}, False, id="false-is-not-0"),
        pytest.param({"count": [False, None]}, False, id="false-is-not-0-in-any-of"),
        pytest.param({"pull_request.draft": 0}, False, id="0-is-not-false"),
        pytest.param({"pull_request.draft": False}, True, id="false"),
        pytest.param({"pull_request.labels": [["bug", "urgent"]]}, True, id="list-value"),
        pytest.param({"pull_request.user": {"login": "ann"}}, True, id="object-value"),
        pytest.param({"pull_request.user": {"login": "bo"}}, False, id="object-value-differs"),
    ],
)
def test_payload_matches(payload_filter: dict[str, Any], expected: bool) -> None:
    assert payload_matches(PAYLOAD, payload_filter) is expected


def make(name: str, pattern: str, handler: str, **fields: Any) -> Route:
    return Route.objects.create(name=name, event_type=pattern, handler=handler, **fields)


def api() -> Source:
    source, _ = Source.objects.get_or_create(slug="api", defaults={"kind": "api"})
    return source


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("pattern", "event_type", "expected"),
    [
        ("github.pull_request.*", "github.pull_request.opened", True),
        ("github.pull_request.*", "github.pull_request", False),
        ("github.*", "github.pull_request.opened", True),  # fnmatch: * crosses dots
        ("*", "anything.at.all", True),
        ("github.?ush", "github.push", True),
        ("github.[pq]ush", "github.push", True),
        ("github.push", "github.push", True),
        ("github.push", "GitHub.push", False),  # case-sensitive
        ("github.push", "github.pushed", False),
    ],
)
def test_type_glob(pattern: str, event_type: str, expected: bool) -> None:
    Route.objects.all().delete()
    make("r", pattern, "h")
    assert [r.name for r in matching_routes(event_type, {}, source=api())] == (
        ["r"] if expected else []
    )


@pytest.mark.django_db
def test_one_route_per_handler_even_if_several_match() -> None:
    # given
    Route.objects.all().delete()
    make("b-second", "order.*", "h.one")
    make("a-first", "order.created", "h.one")
    make("c", "order.*", "h.two", payload_filter={"total": 5})
    make("d", "order.*", "h.three", enabled=False)
    # when
    chosen = matching_routes("order.created", {"total": 5}, source=api())
    # then the first route by name wins for h.one
    assert [(r.name, r.handler) for r in chosen] == [("a-first", "h.one"), ("c", "h.two")]


@pytest.mark.django_db
def test_a_handler_whose_first_route_does_not_match_falls_back_to_the_next() -> None:
    Route.objects.all().delete()
    make("a", "order.*", "h.one", payload_filter={"total": 99})
    make("b", "order.*", "h.one")
    assert [r.name for r in matching_routes("order.created", {"total": 5}, source=api())] == ["b"]


PATTERNS = [
    "*",
    "github.*",
    "github.pull_request.*",
    "github.?ush",
    "github.[pq]ush",
    "github.[!p]ush",
    "stripe.invoice.payment_failed",
    "stripe.invoice.payment%failed",
    "*.payment_*",
    "a_b",
    "schedule.daily-briefing",
    "GitHub.*",
    "x\\*",
    "",
]
TYPES = [
    "github.push",
    "github.qush",
    "github.pull_request.opened",
    "stripe.invoice.payment_failed",
    "stripe.invoice.paymentXfailed",
    "aXb",
    "a_b",
    "GITHUB.push",
    "schedule.daily-briefing",
    "x",
]


@pytest.mark.django_db
def test_the_sql_prefilter_never_loses_a_route_python_would_match() -> None:
    """matching_routes asks the database for candidate routes first (a LIKE form of each
    glob); whatever it keeps, the result must equal plain fnmatchcase over every route."""
    from fnmatch import fnmatchcase

    Route.objects.all().delete()
    for n, pattern in enumerate(PATTERNS):
        make(f"r{n:02d}", pattern, f"h{n:02d}")
    for event_type in TYPES:
        expected = [f"r{n:02d}" for n, p in enumerate(PATTERNS) if fnmatchcase(event_type, p)]
        assert [r.name for r in matching_routes(event_type, {}, source=api())] == expected, (
            event_type
        )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kinds", "slugs", "source", "expected"),
    [
        pytest.param([], [], ("gh", "github"), True, id="no-rule-takes-any-source"),
        pytest.param(["github"], [], ("gh", "github"), True, id="kind-listed"),
        pytest.param(["github"], [], ("api", "api"), False, id="kind-not-listed"),
        pytest.param([], ["gh"], ("gh", "github"), True, id="slug-listed"),
        pytest.param([], ["gh"], ("gh2", "github"), False, id="slug-not-listed"),
        pytest.param(["stripe"], ["gh"], ("gh", "github"), True, id="slug-or-kind"),
        pytest.param(["stripe"], ["gh"], ("api", "api"), False, id="neither"),
    ],
)
def test_a_route_takes_events_only_from_the_sources_it_names(
    kinds: list[str], slugs: list[str], source: tuple[str, str], expected: bool
) -> None:
    Route.objects.all().delete()
    make("r", "order.*", "h", source_kinds=kinds, source_slugs=slugs)
    slug, kind = source
    origin = Source.objects.create(slug=slug, kind=kind)
    chosen = matching_routes("order.created", {}, source=origin)
    assert [r.name for r in chosen] == (["r"] if expected else [])


@pytest.fixture
def github_only_handler() -> Any:
    name = "test.github_only"
    registry.handler(name, sources=["github"])(lambda ctx: None)
    yield name
    registry._registry.pop(name, None)


@pytest.mark.django_db
def test_a_handler_that_names_its_source_kinds_is_held_to_them_on_any_route(
    github_only_handler: str,
) -> None:
    # given a route of an operator's own that takes any source, to a GitHub-only handler
    Route.objects.all().delete()
    make("r", "github.pull_request.*", github_only_handler)
    gh = Source.objects.create(slug="gh", kind="github")
    # then only the GitHub source's events reach it
    assert matching_routes("github.pull_request.opened", {}, source=api()) == []
    assert [r.name for r in matching_routes("github.pull_request.opened", {}, source=gh)] == ["r"]


@pytest.mark.django_db
def test_a_route_that_refuses_the_source_lets_the_handlers_next_route_take_it() -> None:
    Route.objects.all().delete()
    make("a", "order.*", "h.one", source_kinds=["github"])
    make("b", "order.*", "h.one")
    assert [r.name for r in matching_routes("order.created", {}, source=api())] == ["b"]


def test_a_source_kind_that_is_not_a_kind_name_is_refused_at_registration() -> None:
    with pytest.raises(ValueError, match="source kind 'GitHub!'"):
        registry.handler("test.bad_sources", sources=["GitHub!"])
    assert registry.get("test.bad_sources") is None
