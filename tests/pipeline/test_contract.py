"""The handler contract: how handlers are found and how their failures are treated. What
handlers may import is checked by import-linter (pyproject.toml, ``make lint``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command

from events.delivery import execute
from events.models import Attempt, Delivery, Route, Source
from events.publish import publish
from handlers import registry
from handlers.registry import PermanentError, TransientError, handler

ROOT = Path(__file__).resolve().parent.parent.parent


def test_public_names_import_from_the_registry() -> None:
    assert handler is registry.handler
    assert issubclass(TransientError, Exception)
    assert issubclass(PermanentError, Exception)


def test_handlers_in_an_installed_apps_agents_module_are_discovered() -> None:
    # tests.testapp is an installed app whose agents.py holds these
    names = {spec.name for spec in registry.all_handlers()}
    assert {"test.rebook", "test.notify", "test.flaky", "demo.rebook"} <= names


@pytest.mark.django_db
def test_sync_routes_creates_declared_routes_and_keeps_admin_edits() -> None:
    Route.objects.all().delete()
    call_command("sync_routes", stdout=open("/dev/null", "w"))  # noqa: SIM115
    route = Route.objects.get(name="test.flaky <- test.flaky")
    assert (route.event_type, route.handler, route.managed) == ("test.flaky", "test.flaky", True)
    assert (route.max_attempts, route.backoff_base, route.backoff_max) == (5, 1.0, 30.0)

    # an operator tunes the route; a later sync leaves it alone
    Route.objects.filter(id=route.id).update(max_attempts=9, enabled=False)
    call_command("sync_routes", stdout=open("/dev/null", "w"))  # noqa: SIM115
    route.refresh_from_db()
    assert (route.max_attempts, route.enabled) == (9, False)


@pytest.mark.django_db
def test_unexpected_exceptions_are_retried_then_dead_lettered(routes: None) -> None:
    source = Source.objects.create(slug="contract", kind="api")
    event = publish(source=source, type="test.unexpected", payload={}).event
    delivery = Delivery.objects.get(event=event)

    first = execute(delivery.id)
    assert first.status == "retrying"
    assert first.retry_in is not None and 0.01 <= first.retry_in <= 0.0125
    Delivery.objects.filter(id=delivery.id).update(next_attempt_at=delivery.created_at)
    second = execute(delivery.id)

    assert second.status == "dead_lettered"
    delivery.refresh_from_db()
    assert (delivery.error_class, delivery.last_error) == ("ValueError", "surprise")
    assert list(Attempt.objects.filter(delivery=delivery).values_list("status", flat=True)) == [
        "failed",
        "failed",
    ]


@pytest.mark.django_db
def test_transient_error_retry_after_replaces_the_backoff(routes: None) -> None:
    source = Source.objects.create(slug="contract", kind="api")
    event = publish(source=source, type="test.retry_after", payload={}).event
    outcome = execute(Delivery.objects.get(event=event).id)
    assert (outcome.status, outcome.retry_in) == ("retrying", 42.0)


@pytest.mark.django_db
def test_a_non_json_outcome_dead_letters_instead_of_half_saving(routes: None) -> None:
    source = Source.objects.create(slug="contract", kind="api")
    event = publish(source=source, type="test.bad_outcome", payload={}).event
    outcome = execute(Delivery.objects.get(event=event).id)
    assert outcome.status == "dead_lettered"
    delivery = Delivery.objects.get(event=event)
    assert delivery.outcome is None
    assert delivery.last_error.startswith("handler outcome is not JSON")
