"""The providers' published signature vectors (fixtures/signature-vectors.json),
checked against each kind's verifier with the clock pinned to the vector's ``now``."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from typing import Any

import pytest
from django.utils.datastructures import CaseInsensitiveMapping

from events.webhooks import github, slack, standard_webhooks, stripe
from events.webhooks.base import MISMATCH, Rejection

from .conftest import VECTORS

Verify = Callable[[CaseInsensitiveMapping[str], bytes, list[str], float], None]

VERIFIERS: dict[str, Verify] = {
    "github": lambda headers, body, secrets, now: github.verify(headers, body, secrets),
    "stripe": stripe.verify,
    "slack": slack.verify,
    "standard_webhooks": standard_webhooks.verify,
}
WINDOW_MESSAGES = {
    "stripe": "Stripe-Signature t= is more than 300 s from our clock",
    "slack": "X-Slack-Request-Timestamp is more than 300 s from our clock",
    "standard_webhooks": "webhook-timestamp is more than 300 s from our clock",
}
SCHEMES = sorted(VERIFIERS)
TIMESTAMPED = sorted(WINDOW_MESSAGES)


def verify(scheme: str, *, body: bytes | None = None, now: float | None = None) -> None:
    vector: dict[str, Any] = VECTORS[scheme]
    VERIFIERS[scheme](
        CaseInsensitiveMapping(vector["headers"]),
        vector["body"].encode() if body is None else body,
        [vector["secret"]],
        vector.get("now", 0) if now is None else now,
    )


def refusal(scheme: str, **kwargs: Any) -> tuple[int, str]:
    with pytest.raises(Rejection) as raised:
        verify(scheme, **kwargs)
    return raised.value.status, raised.value.message


def test_every_scheme_has_a_vector() -> None:
    assert sorted(k for k in VECTORS if not k.startswith("_")) == SCHEMES


@pytest.mark.parametrize("scheme", SCHEMES)
def test_vector_verifies(scheme: str) -> None:
    verify(scheme)  # raises on failure


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("position", [0, 7, -1])
def test_vector_fails_with_one_body_byte_changed(scheme: str, position: int) -> None:
    body = bytearray(VECTORS[scheme]["body"].encode())
    body[position] ^= 0x01
    assert refusal(scheme, body=bytes(body)) == (401, MISMATCH)


@pytest.mark.parametrize("scheme", TIMESTAMPED)
@pytest.mark.parametrize("offset", [-300, 300])
def test_vector_verifies_at_the_edges_of_the_window(scheme: str, offset: int) -> None:
    verify(scheme, now=VECTORS[scheme]["now"] + offset)


@pytest.mark.parametrize("scheme", TIMESTAMPED)
@pytest.mark.parametrize("offset", [-301, 301], ids=["301s-before", "301s-after"])
def test_vector_fails_301_seconds_outside_the_window(scheme: str, offset: int) -> None:
    assert refusal(scheme, now=VECTORS[scheme]["now"] + offset) == (401, WINDOW_MESSAGES[scheme])


def test_github_vector_has_no_window() -> None:
    # No timestamp is signed: a GitHub delivery verifies at any time (dedupe is its defence).
    verify("github", now=10**10)


def test_standard_webhooks_vector_fails_with_stripes_key_derivation() -> None:
    # given the vector's signature and secret, and Stripe's derivation (the whole whsec_ string
    # as the key) over the same signed content
    vector = VECTORS["standard_webhooks"]
    headers = vector["headers"]
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{vector['body']}".encode()
    raw_key_signature = hmac.new(vector["secret"].encode(), signed, hashlib.sha256).digest()
    # then the published signature is not the raw-key one, and a raw-key one is refused
    assert headers["webhook-signature"] != "v1," + base64.b64encode(raw_key_signature).decode()
    forged = {**headers, "webhook-signature": "v1," + base64.b64encode(raw_key_signature).decode()}
    with pytest.raises(Rejection) as raised:
        standard_webhooks.verify(
            CaseInsensitiveMapping(forged),
            vector["body"].encode(),
            [vector["secret"]],
            vector["now"],
        )
    assert (raised.value.status, raised.value.message) == (401, MISMATCH)


def test_stripe_vector_fails_with_standard_webhooks_key_derivation() -> None:
    # given a whsec_ secret that is valid base64 (so both derivations yield a key), and the
    # Stripe vector's body and timestamp signed with the base64-decoded key
    secret = VECTORS["standard_webhooks"]["secret"]
    vector = VECTORS["stripe"]
    decoded_key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{vector['now']}.{vector['body']}".encode()
    digest = hmac.new(decoded_key, signed, hashlib.sha256).hexdigest()
    headers = CaseInsensitiveMapping({"Stripe-Signature": f"t={vector['now']},v1={digest}"})
    # when Stripe's verifier checks it
    with pytest.raises(Rejection) as raised:
        stripe.verify(headers, vector["body"].encode(), [secret], vector["now"])
    # then it is refused, while Stripe's own derivation with the same secret verifies
    assert (raised.value.status, raised.value.message) == (401, MISMATCH)
    good = stripe.sign(secret, vector["body"].encode(), vector["now"])
    stripe.verify(
        CaseInsensitiveMapping({"Stripe-Signature": good}),
        vector["body"].encode(),
        [secret],
        vector["now"],
    )


def test_stripe_vectors_secret_is_not_a_standard_webhooks_secret() -> None:
    # whsec_test_secret is not base64 after its prefix: Standard Webhooks cannot use it.
    assert standard_webhooks.signing_key(VECTORS["stripe"]["secret"]) is None
    assert standard_webhooks.signing_key(VECTORS["standard_webhooks"]["secret"]) == (
        base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    )


@pytest.mark.parametrize("scheme", SCHEMES)
def test_vector_is_refused_with_another_secret(scheme: str) -> None:
    vector = VECTORS[scheme]
    with pytest.raises(Rejection) as raised:
        VERIFIERS[scheme](
            CaseInsensitiveMapping(vector["headers"]),
            vector["body"].encode(),
            ["whsec_" + base64.b64encode(b"another key entirely").decode()],
            vector.get("now", 0),
        )
    assert (raised.value.status, raised.value.message) == (401, MISMATCH)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_vector_verifies_as_the_second_secret_during_a_rotation(scheme: str) -> None:
    vector = VECTORS[scheme]
    VERIFIERS[scheme](
        CaseInsensitiveMapping(vector["headers"]),
        vector["body"].encode(),
        ["whsec_" + base64.b64encode(b"the newer key").decode(), vector["secret"]],
        vector.get("now", 0),
    )
