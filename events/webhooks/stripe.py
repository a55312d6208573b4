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
from typing import Any

from .base import (
    JSON_TYPES,
    Incoming,
    Rejection,
    Signed,
    WebhookKind,
    WebhookRequest,
    check_timestamp,
    event_type,
    media_type,
    parse_json_object,
    required_header,
    string_at,
)
from .registry import register

HEADER = "Stripe-Signature"
SCHEME = "v1"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The Stripe-Signature header Stripe would send for ``body`` at ``timestamp``."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},{SCHEME}={digest}"


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


@register
class StripeKind(WebhookKind):
    name = "stripe"
    signature_header = HEADER
    no_signature = f"{HEADER} has no {SCHEME} signature"

    def signed(self, request: WebhookRequest, now: float) -> Signed:
        timestamp, signatures = parse_header(required_header(request.headers, HEADER))
        check_timestamp(timestamp, f"{HEADER} t=", now)
        return Signed(
            content=timestamp.encode() + b"." + request.body,
            signatures=[s.lower().encode() for s in signatures],
        )

    def read(self, request: WebhookRequest) -> Incoming:
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

    def sign_request(self, secret: str, body: bytes, now: int) -> dict[str, str]:
        return {HEADER: sign(secret, body, now)}

    def secret_problem(self, secret: str) -> str | None:
        if not secret.startswith("whsec_"):
            return "a Stripe signing secret starts with whsec_"
        return None
