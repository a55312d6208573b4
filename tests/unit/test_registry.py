"""handlers.registry: the @handler decorator and the registry by name."""

from __future__ import annotations

from typing import Any

import pytest

from handlers import registry
from handlers.context import HandlerContext
from handlers.registry import handler


@pytest.fixture(autouse=True)
def empty_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test registers into a fresh registry; the project's handlers are left alone."""
    monkeypatch.setattr(registry, "_registry", {})


def test_decorator_registers_the_handler_with_its_defaults() -> None:
    # when
    @handler("shop.notify", on="shop.order.*", queue="agents", stale_after=300)
    def notify(ctx: HandlerContext) -> dict[str, Any]:
        """Tell the customer.

        More detail here.
        """
        return {}

    # then
    spec = registry.get("shop.notify")
    assert spec is not None
    assert spec.fn is notify
    assert spec.on == ("shop.order.*",)  # a single string is one pattern, not characters
    assert (spec.max_attempts, spec.time_limit, spec.backoff_base, spec.backoff_max) == (
        5,
        60,
        2.0,
        600.0,
    )
    assert (spec.queue, spec.stale_after, spec.description) == ("agents", 300, "Tell the customer.")
    assert [s.name for s in registry.all_handlers()] == ["shop.notify"]


def test_all_handlers_are_sorted_by_name() -> None:
    for name in ["b.two", "a.one", "c.three"]:
        handler(name)(lambda ctx: None)
    assert [s.name for s in registry.all_handlers()] == ["a.one", "b.two", "c.three"]


def test_unknown_name_gives_none() -> None:
    assert registry.get("no.such.handler") is None


@pytest.mark.parametrize(
    "name", ["", "Shop.Notify", "-leading-dash", "has space", "x" * 101, "slash/name"]
)
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="must match"):
        handler(name)


def test_a_name_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(ValueError, match="must match"):
        handler("shop.notify\n")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_attempts": 0}, "max_attempts must be at least 1"),
        ({"time_limit": 0}, "time_limit must be at least 1 second"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        handler("shop.notify", **kwargs)


def test_a_name_taken_by_another_function_is_refused() -> None:
    # given
    @handler("shop.notify")
    def first(ctx: HandlerContext) -> None:
        return None

    def second(ctx: HandlerContext) -> None:
        return None

    # when / then
    with pytest.raises(ValueError, match=r"handler 'shop.notify' is already registered by .*first"):
        handler("shop.notify")(second)
    spec = registry.get("shop.notify")
    assert spec is not None
    assert spec.fn is first


def test_registering_the_same_function_again_is_allowed() -> None:
    # A module imported twice (autoreload, tests) registers the same function again.
    def notify(ctx: HandlerContext) -> None:
        return None

    handler("shop.notify", max_attempts=2)(notify)
    handler("shop.notify", max_attempts=3)(notify)
    spec = registry.get("shop.notify")
    assert spec is not None
    assert spec.max_attempts == 3
