"""Stripe deliveries through POST /hooks/<slug>, signed by the stripe library itself."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import stripe
from django.test import Client

from events.models import Event, Source
from events.webhooks.stripe import sign

from .conftest import NOW, STRIPE_NEW, STRIPE_OLD, assert_rejected, post, stored

pytestmark = pytest.mark.django_db


def stripe_event(event_id: str = "evt_1", **obj: Any) -> bytes:
    document = {
        "id": event_id,
        "object": "event",
        "type": "invoice.paid",
        "data": {"object": {"id": "in_1", "object": "invoice", **obj}},
    }
    return json.dumps(document, indent=2).encode()


def library_header(body: bytes, secret: str = STRIPE_NEW, timestamp: int = NOW) -> str:
    return stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp)


def test_event_signed_by_the_stripe_library_is_accepted(
    client: Client, stripe_source: Source, clock: Callable[[float], None]
) -> None:
    body = stripe_event(customer="cus_9")
    response = post(client, "pay", body, {"Stripe-Signature": library_header(body)})
    assert response.status_code == 202, response.content
    event = Event.objects.get()
    assert (event.type, event.external_id, event.partition_key) == (
        "stripe.invoice.paid",
        "evt_1",
        "cus_9",
    )
    assert event.payload == json.loads(body)


def test_our_signature_is_the_one_the_stripe_library_makes() -> None:
    body = stripe_event()
    assert sign(STRIPE_NEW, body, NOW) == library_header(body)


@pytest.mark.parametrize(
    ("obj", "partition_key"),
    [
        pytest.param({"customer": {"id": "cus_x", "object": "customer"}}, "cus_x", id="expanded"),
        pytest.param({"object": "customer", "id": "cus_self"}, "cus_self", id="customer-object"),
        pytest.param({}, "", id="none"),
    ],
)
def test_partition_key_is_the_customer_when_present(
    client: Client,
    stripe_source: Source,
    clock: Callable[[float], None],
    obj: dict[str, Any],
    partition_key: str,
) -> None:
    body = stripe_event(**obj)
    assert post(client, "pay", body, {"Stripe-Signature": library_header(body)}).status_code == 202
    assert Event.objects.get().partition_key == partition_key


def test_several_v1_signatures_pass_if_any_matches_and_v0_is_ignored(
    client: Client, stripe_source: Source, clock: Callable[[float], None]
) -> None:
    # given the header Stripe sends while a secret rolls: one v1 per secret, and a v0
    body = stripe_event()
    good = library_header(body, secret=STRIPE_OLD).split("v1=")[1]
    header = f"t={NOW},v1={'0' * 64},v1={good},v0={'f' * 64},v9=unknown"
    response = post(client, "pay", body, {"Stripe-Signature": header})
    assert response.status_code == 202, response.content


def test_v0_alone_is_refused(
    client: Client, stripe_source: Source, clock: Callable[[float], None]
) -> None:
    body = stripe_event()
    good = library_header(body).split("v1=")[1]
    before = stored()
    response = post(client, "pay", body, {"Stripe-Signature": f"t={NOW},v0={good}"})
    assert_rejected(response, 401, "Stripe-Signature has no v1 signature")
    assert stored() == before


def test_resigned_redelivery_of_the_same_event_is_a_duplicate(
    client: Client, stripe_source: Source, clock: Callable[[float], None]
) -> None:
    # given an event delivered, then retried by Stripe a minute later with a fresh signature
    body = stripe_event("evt_retry")
    first = post(client, "pay", body, {"Stripe-Signature": library_header(body)})
    clock(NOW + 60)
    again = post(
        client, "pay", body, {"Stripe-Signature": library_header(body, timestamp=NOW + 60)}
    )
    # then
    assert first.status_code == 202
    assert (again.status_code, again.json()) == (200, {"id": first.json()["id"], "duplicate": True})
    assert Event.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'{"object": "event", "type": "invoice.paid"}', "Stripe event has no id"),
        (b'{"id": "evt_1", "object": "event"}', "Stripe event has no type"),
    ],
)
def test_event_without_id_or_type_is_400(
    client: Client, stripe_source: Source, clock: Callable[[float], None], body: bytes, error: str
) -> None:
    before = stored()
    response = post(client, "pay", body, {"Stripe-Signature": library_header(body)})
    assert_rejected(response, 400, error)
    assert stored() == before


def test_secret_without_whsec_prefix_is_a_problem() -> None:
    from events.webhooks import get_kind

    kind = get_kind("stripe")
    assert kind is not None
    assert kind.secret_problem("sk_live_123") == "a Stripe signing secret starts with whsec_"
    assert kind.secret_problem(STRIPE_NEW) is None
