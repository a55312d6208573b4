"""The model an agent calls: the admin's override (AgentConfig) wins over the agent's own
``model=`` and SWITCHYARD_AGENT_MODEL, from the next run on; deprecated or malformed names are
refused in the admin with a message."""

from __future__ import annotations

from typing import Any

import pytest
from anthropic._data import DEPRECATED_MODELS
from django.test import Client
from django.urls import reverse

from events.delivery import execute
from events.models import Delivery, Source
from events.publish import publish
from handlers.models import AgentConfig, Step
from handlers.overrides import known_models

from .conftest import FakeMessagesAPI

pytestmark = pytest.mark.django_db


def run_order_agent() -> Delivery:
    source, _ = Source.objects.get_or_create(slug="agents", kind="api")
    event = publish(source=source, type="test.agent", payload={"question": "ord_7?"}).event
    delivery = Delivery.objects.get(event=event, handler="test.agent")
    execute(delivery.pk)
    delivery.refresh_from_db()
    return delivery


def other_current_model() -> str:
    return next(m for m in known_models() if m != "claude-sonnet-5-5")


def test_the_admin_override_wins_from_the_next_run(fake_api: FakeMessagesAPI, routes: None) -> None:
    fake_api.text("first")
    run_order_agent()
    override = other_current_model()
    AgentConfig.objects.create(handler="test.agent", model=override)
    fake_api.text("second", model=override)
    delivery = run_order_agent()

    assert [r.body["model"] for r in fake_api.requests] == ["claude-sonnet-5-5", override]
    assert Step.objects.get(attempt__delivery=delivery, kind="llm").name == override

    AgentConfig.objects.filter(handler="test.agent").update(model="")  # back to the default
    fake_api.text("third")
    run_order_agent()
    assert fake_api.requests[-1].body["model"] == "claude-sonnet-5-5"


ADD = reverse("admin:handlers_agentconfig_add")


def test_admin_saves_a_current_model(admin_client: Client) -> None:
    model = other_current_model()
    response = admin_client.post(ADD, {"handler": "test.agent", "model": model})
    assert response.status_code == 302
    assert AgentConfig.objects.get().model == model

    page = admin_client.get(reverse("admin:handlers_agentconfig_changelist")).content.decode()
    assert model in page and "claude-sonnet-5-5" in page  # the override and the default


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (sorted(DEPRECATED_MODELS)[0], "is deprecated in the installed anthropic SDK"),
        ("Claude Sonnet!", "not a model name"),
    ],
)
def test_admin_refuses_a_deprecated_or_malformed_model(
    admin_client: Client, model: str, message: str
) -> None:
    response = admin_client.post(ADD, {"handler": "test.agent", "model": model})
    assert response.status_code == 200
    assert message in str(response.context["adminform"].form.errors["model"])
    assert not AgentConfig.objects.exists()


def test_admin_offers_agent_handlers_only(admin_client: Client) -> None:
    form: Any = admin_client.get(ADD).context["adminform"].form
    names = [value for value, _ in form.fields["handler"].choices]
    assert "test.agent" in names
    assert "test.rebook" not in names  # a plain handler has no model


def test_a_worker_reads_the_override_once_per_memo_period_and_sees_an_edit_after_it(
    fake_api: FakeMessagesAPI, routes: None, settings: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from handlers.overrides import SETTINGS

    # given the lookup memo on, with a clock the test moves, and an agent that has run once
    settings.SWITCHYARD_LOOKUP_CACHE_SECONDS = 5.0
    now = [1000.0]
    SETTINGS.clear()
    SETTINGS.clock = lambda: now[0]
    try:
        fake_api.text("first")
        run_order_agent()
        override = other_current_model()
        AgentConfig.objects.create(handler="test.agent", model=override)

        # when it runs again within the memo's seconds, and again after them
        fake_api.text("second")
        with CaptureQueriesContext(connection) as within:
            run_order_agent()
        now[0] += 5.0
        fake_api.text("third", model=override)
        run_order_agent()
    finally:
        SETTINGS.clear()

    # then the second run read no settings and kept the model; the third saw the override
    assert not [q for q in within.captured_queries if "handlers_agentconfig" in q["sql"]]
    assert [r.body["model"] for r in fake_api.requests] == [
        "claude-sonnet-5-5",
        "claude-sonnet-5-5",
        override,
    ]
