"""events.webhooks.hmac.signature_matches: prefix, case, whitespace, rotation secrets."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from events.webhooks.hmac import sign, signature_matches

BODY = b'{"type": "a.b", "payload": {}}'
SECRETS = ["new-secret", "old-secret"]


def hexdigest(secret: str, body: bytes = BODY) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_sign_is_hmac_sha256_hex_with_a_prefix() -> None:
    assert sign("new-secret", BODY) == "sha256=" + hexdigest("new-secret")
    assert len(sign("new-secret", BODY)) == len("sha256=") + 64


@pytest.mark.parametrize(
    "given",
    [
        pytest.param("sha256=" + hexdigest("new-secret"), id="prefixed"),
        pytest.param(hexdigest("new-secret"), id="bare"),
        pytest.param("SHA256=" + hexdigest("new-secret").upper(), id="upper-case"),
        pytest.param("Sha256=" + hexdigest("new-secret"), id="mixed-case-prefix"),
        pytest.param("  sha256=" + hexdigest("new-secret") + "\t", id="surrounding-space"),
        pytest.param("sha256=" + hexdigest("old-secret"), id="second-secret"),
    ],
)
def test_signature_matches(given: str) -> None:
    assert signature_matches(SECRETS, BODY, given) is True


@pytest.mark.parametrize(
    "given",
    [
        pytest.param("", id="empty"),
        pytest.param("sha256=", id="prefix-only"),
        pytest.param("sha256=" + hexdigest("other-secret"), id="other-secret"),
        pytest.param("sha256=" + hexdigest("new-secret", BODY + b"\n"), id="other-body"),
        pytest.param("sha256=" + hexdigest("new-secret")[:63], id="one-char-short"),
        pytest.param("sha256=" + hexdigest("new-secret") + "0", id="one-char-long"),
        pytest.param("sha256=sha256=" + hexdigest("new-secret"), id="double-prefix"),
        pytest.param("sha1=" + hexdigest("new-secret"), id="other-algorithm-prefix"),
        pytest.param("sha256= " + hexdigest("new-secret"), id="space-after-prefix"),
        pytest.param("sha256=" + "é" * 64, id="non-ascii"),
        pytest.param("sha256=" + hexdigest("new-secret")[:-1] + "\u0660", id="arabic-digit"),
    ],
)
def test_signature_does_not_match(given: str) -> None:
    assert signature_matches(SECRETS, BODY, given) is False


def test_no_secrets_match_nothing() -> None:
    assert signature_matches([], BODY, sign("new-secret", BODY)) is False


def test_every_secret_is_checked_even_after_a_match(monkeypatch: pytest.MonkeyPatch) -> None:
    # Stopping at the first match would tell a timing observer which secret matched.
    compared: list[bytes] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append(a)
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert signature_matches(SECRETS, BODY, sign("new-secret", BODY)) is True
    assert compared == [hexdigest("new-secret").encode(), hexdigest("old-secret").encode()]
