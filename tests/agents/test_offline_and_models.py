"""The offline provider, and the default model against the SDK's deprecation list."""

from __future__ import annotations

import typing
from typing import Any

import anthropic.resources.messages.messages as sdk_messages
from anthropic._data import DEPRECATED_MODELS
from anthropic.types.model import Model

from handlers import conf
from handlers.llm import Agent

from .conftest import FakeMessagesAPI


def test_default_model_is_current_in_the_installed_sdk() -> None:
    model = conf.AGENT_MODEL.get()
    known = typing.get_args(typing.get_args(Model)[0])
    assert model in known
    assert model not in DEPRECATED_MODELS
    assert model not in sdk_messages.DEPRECATED_MODELS


def test_offline_provider_is_deterministic_labelled_and_makes_no_call(
    fake_api: FakeMessagesAPI, make_ctx: Any, settings: Any
) -> None:
    settings.SWITCHYARD_AGENT_PROVIDER = "offline"
    agent = Agent(name="support", system="You triage tickets.")
    steps: list[dict[str, Any]] = []

    first = agent.run(make_ctx({"subject": "Refund"}, steps=steps), "Triage.")
    again = agent.run(make_ctx({"subject": "Refund"}), "Triage.")
    other = agent.run(make_ctx({"subject": "Invoice"}), "Triage.")

    assert first.as_outcome() == again.as_outcome()
    assert first.text != other.text
    assert first.as_outcome()["provider"] == "offline"
    assert first.text.startswith("[offline provider] support did not call a model.")
    assert steps == first.steps
    assert steps[0]["provider"] == "offline"
    assert len(fake_api.requests) == 0
