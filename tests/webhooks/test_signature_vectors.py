"""The signature vectors (fixtures/signature-vectors.json), checked against every registered
kind's verifier with the clock pinned to the vector's ``now``. Generated from the registry: a
kind without a vector fails here."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest
from django.utils.datastructures import CaseInsensitiveMapping

from events.webhooks import KINDS, WebhookKind
from events.webhooks.base import MISMATCH, Rejection, WebhookRequest
from events.webhooks.standard_webhooks import signing_key

from .conftest import KIND_NAMES, VECTORS, vector

TIMESTAMPED = sorted(name for name in KIND_NAMES if "now" in VECTORS.get(name, {}))
UNTIMESTAMPED = sorted(name for name in KIND_NAMES if "now" not in VECTORS.get(name, {}))
# A secret no vector was signed with; whsec_ + base64 so every kind can use it as a key.
OTHER_SECRET = "whsec_" + base64.b64encode(b"another key entirely").decode()


def pinned(kind: str, now: float) -> WebhookKind:
    """A fresh instance of the registered kind, reading ``now`` from its clock."""
    return type(KINDS[kind])(clock=lambda: now)


def verify(
    kind: str,
    *,
    body: bytes | None = None,
    now: float | None = None,
    secrets: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    spec: dict[str, Any] = vector(kind)
    pinned(kind, spec.get("now", 0) if now is None else now).verify(
        WebhookRequest(
            headers=CaseInsensitiveMapping(spec["headers"] if headers is None else headers),
            body=spec["body"].encode() if body is None else body,
            content_type="application/json",
            secrets=[spec["secret"]] if secrets is None else secrets,
            settings=spec.get("settings", {}),
        )
    )


def refusal(kind: str, **kwargs: Any) -> tuple[int, str]:
    with pytest.raises(Rejection) as raised:
        verify(kind, **kwargs)
    return raised.value.status, raised.value.message


def test_every_registered_kind_has_a_vector() -> None:
    assert sorted(k for k in VECTORS if not k.startswith("_")) == KIND_NAMES


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_vector_says_what_its_window_answers_when_it_has_one(kind: str) -> None:
    spec = vector(kind)
    assert ("now" in spec) == ("window_error" in spec)


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_vector_verifies(kind: str) -> None:
    verify(kind)  # raises on failure


@pytest.mark.parametrize("kind", KIND_NAMES)
@pytest.mark.parametrize("position", [0, 7, -1])
def test_vector_fails_with_one_body_byte_changed(kind: str, position: int) -> None:
    body = bytearray(vector(kind)["body"].encode())
    body[position] ^= 0x01
    assert refusal(kind, body=bytes(body)) == (401, MISMATCH)


@pytest.mark.parametrize("kind", TIMESTAMPED)
@pytest.mark.parametrize("offset", [-300, 300])
def test_vector_verifies_at_the_edges_of_the_window(kind: str, offset: int) -> None:
    verify(kind, now=vector(kind)["now"] + offset)


@pytest.mark.parametrize("kind", TIMESTAMPED)
@pytest.mark.parametrize("offset", [-301, 301], ids=["301s-before", "301s-after"])
def test_vector_fails_301_seconds_outside_the_window(kind: str, offset: int) -> None:
    spec = vector(kind)
    assert refusal(kind, now=spec["now"] + offset) == (401, spec["window_error"])


@pytest.mark.parametrize("kind", UNTIMESTAMPED)
def test_vector_without_a_signed_time_verifies_at_any_time(kind: str) -> None:
    # No timestamp is signed (GitHub; hmac without timestamp_header): dedupe is the defence.
    verify(kind, now=10**10)


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_vector_is_refused_with_another_secret(kind: str) -> None:
    assert refusal(kind, secrets=[OTHER_SECRET]) == (401, MISMATCH)


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_vector_verifies_as_the_second_secret_during_a_rotation(kind: str) -> None:
    newer = "whsec_" + base64.b64encode(b"the newer key").decode()
    verify(kind, secrets=[newer, vector(kind)["secret"]])


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_vector_is_refused_as_a_third_secret(kind: str) -> None:
    # Only the newest two are tried (ROTATION_SECRETS): a retired secret no longer verifies.
    secrets = ["whsec_" + base64.b64encode(f"key {n}".encode()).decode() for n in (1, 2)]
    assert refusal(kind, secrets=[*secrets, vector(kind)["secret"]]) == (401, MISMATCH)


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_a_source_without_secrets_refuses_the_vector(kind: str) -> None:
    assert refusal(kind, secrets=[]) == (401, "this source has no secret configured")


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_what_our_signer_makes_verifies(kind: str) -> None:
    # given the kind's sender-side signature over the vector's body, at the vector's time
    spec = vector(kind)
    now = spec.get("now", 0)
    headers = KINDS[kind].sign_request(spec["secret"], spec["body"].encode(), now)
    # then the kind's verifier takes it, and it differs from a signature over another body
    verify(kind, headers=headers)
    other = KINDS[kind].sign_request(spec["secret"], spec["body"].encode() + b" ", now)
    signature = KINDS[kind].signature_header
    assert other[signature] != headers[signature]


def test_standard_webhooks_vector_fails_with_stripes_key_derivation() -> None:
    # given the vector's signature and secret, and Stripe's derivation (the whole whsec_ string
    # as the key) over the same signed content
    spec = vector("standard_webhooks")
    headers = spec["headers"]
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{spec['body']}".encode()
    raw_key_signature = hmac.new(spec["secret"].encode(), signed, hashlib.sha256).digest()
    # then the published signature is not the raw-key one, and a raw-key one is refused
    assert headers["webhook-signature"] != "v1," + base64.b64encode(raw_key_signature).decode()
    forged = {**headers, "webhook-signature": "v1," + base64.b64encode(raw_key_signature).decode()}
    assert refusal("standard_webhooks", headers=forged) == (401, MISMATCH)


def test_stripe_vector_fails_with_standard_webhooks_key_derivation() -> None:
    # given a whsec_ secret that is valid base64 (so both derivations yield a key), and the
    # Stripe vector's body and timestamp signed with the base64-decoded key
    secret = vector("standard_webhooks")["secret"]
    spec = vector("stripe")
    decoded_key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{spec['now']}.{spec['body']}".encode()
    digest = hmac.new(decoded_key, signed, hashlib.sha256).hexdigest()
    headers = {"Stripe-Signature": f"t={spec['now']},v1={digest}"}
    # when Stripe's verifier checks it, then it is refused
    assert refusal("stripe", headers=headers, secrets=[secret]) == (401, MISMATCH)
    # while Stripe's own derivation with the same secret verifies
    good = KINDS["stripe"].sign_request(secret, spec["body"].encode(), spec["now"])
    verify("stripe", headers=good, secrets=[secret])


def test_stripe_vectors_secret_is_not_a_standard_webhooks_secret() -> None:
    # whsec_test_secret is not base64 after its prefix: Standard Webhooks cannot use it.
    assert signing_key(vector("stripe")["secret"]) is None
    assert signing_key(vector("standard_webhooks")["secret"]) == (
        base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    )
