"""Stripe: ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]``.

The signed content is ``{t}.{raw body}`` and the key is the whole ``whsec_...`` string as UTF-8
(not base64-decoded, unlike Standard Webhooks). While a secret is rolled Stripe sends one
``v1`` per secret: any match is enough. ``v0`` (test mode's legacy scheme) and unknown schemes
are ignored. ``t`` must be within 300 s of our clock, either way.

- type: ``stripe.<event type>`` (``stripe.invoice.paid``)
- external id: the event id (``evt_...``), the same on every retry and redelivery, each of
  which Stripe signs afresh
- partition key: the customer id when the event's object names one
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from .base import (
    JSON_TYPES,
    MISMATCH,
    NO_SECRET,
    ROTATION_SECRETS,
    Clock,
    Incoming,
    Rejection,
    WebhookRequest,
    check_timestamp,
    event_type,
    media_type,
    parse_json_object,
    required_header,
    string_at,
    system_clock,
)

HEADER = "Stripe-Signature"
SCHEME = "v1"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The Stripe-Signature header Stripe would send for ``body`` at ``timestamp``."""
    return f"t={timestamp},{SCHEME}={_digest(secret, body, str(timestamp))}"


def _digest(secret: str, body: bytes, timestamp: str) -> str:
    signed = timestamp.encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def parse_header(value: str) -> tuple[str, list[str]]:
    """(t, the v1 signatures). Other schemes are skipped; a malformed header is a 400."""
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in value.split(","):
        key, sep, item_value = item.strip().partition("=")
        if not sep or not key or not item_value:
            raise Rejection(400, f"malformed {HEADER} header")
        if key == "t":
            timestamps.append(item_value)
        elif key == SCHEME:
            signatures.append(item_value)
    if len(timestamps) != 1:
        raise Rejection(400, f"{HEADER} must carry exactly one t=")
    return timestamps[0], signatures


def verify(headers: Mapping[str, str], body: bytes, secrets: list[str], now: float) -> None:
    """Raise a Rejection unless the header holds a fresh v1 signature by one of the secrets."""
    timestamp, signatures = parse_header(required_header(headers, HEADER))
    check_timestamp(timestamp, "Stripe-Signature t=", now)
    if not secrets:
        raise Rejection(401, NO_SECRET)
    if not signatures:
        raise Rejection(401, f"{HEADER} has no {SCHEME} signature")
    expected = (_digest(s, body, timestamp).encode() for s in secrets[:ROTATION_SECRETS])
    candidates = [s.lower().encode() for s in signatures]
    matched = False
    for want in expected:
        for candidate in candidates:
            # Every pair is compared: the time taken does not tell which secret matched.
            matched |= hmac.compare_digest(want, candidate)
    if not matched:
        raise Rejection(401, MISMATCH)


def customer_id(payload: dict[str, Any]) -> str | None:
    """The customer an event is about: its object's ``customer`` (an id or, expanded, an
    object with one), or the object itself when it is a customer."""
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        return None
    customer = string_at(obj, "customer") or string_at(obj, "customer", "id")
    if customer is None and obj.get("object") == "customer":
        customer = string_at(obj, "id")
    return customer


class StripeKind:
    name = "stripe"

    def __init__(self, clock: Clock = system_clock) -> None:
        self.clock = clock

    def parse(self, request: WebhookRequest) -> Incoming:
        verify(request.headers, request.body, request.secrets, self.clock())
        if media_type(request.content_type) not in JSON_TYPES:
            raise Rejection(415, "content type must be application/json")
        payload = parse_json_object(request.body)
        event_id = string_at(payload, "id")
        if event_id is None:
            raise Rejection(400, "Stripe event has no id")
        stripe_type = string_at(payload, "type")
        if stripe_type is None:
            raise Rejection(400, "Stripe event has no type")
        return Incoming(
            type=event_type("stripe", stripe_type),
            payload=payload,
            external_id=event_id,
            partition_key=customer_id(payload),
        )

    def secret_problem(self, secret: str) -> str | None:
        if not secret.startswith("whsec_"):
            return "a Stripe signing secret starts with whsec_"
        return None
