"""Signatures and token digests are compared in constant time, never with == or !=.

A source scan, kept simple: in the modules that verify signatures or tokens, a comparison
whose operand names a signature, digest, token or secret must not use ``==``/``!=``/``in``.
Webhook signatures are compared in one place, ``WebhookKind.verify()`` in
events/webhooks/base.py (``matches_any``), which every registered kind uses; tokens in
events/tokens.py. Both call ``hmac.compare_digest``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from events.webhooks import KINDS, WebhookKind

ROOT = Path(__file__).resolve().parents[2]
MODULES = [*sorted((ROOT / "events" / "webhooks").glob("*.py")), ROOT / "events" / "tokens.py"]
SECRET_NAMES = re.compile(r"sig|digest|expected|candidate|given|token|secret|mac", re.IGNORECASE)
PLAIN_OPS = (ast.Eq, ast.NotEq, ast.In, ast.NotIn)


def plain_comparisons_of_secrets(source: str) -> list[str]:
    """``==``/``!=``/``in`` comparisons with an operand that looks like a signature or digest."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare) or not any(
            isinstance(op, PLAIN_OPS) for op in node.ops
        ):
            continue
        operands = [node.left, *node.comparators]
        texts = [ast.unparse(o) for o in operands]
        # Comparing with a literal (a header's prefix, an empty string) reveals no secret.
        if any(isinstance(o, ast.Constant) for o in operands):
            continue
        if any(SECRET_NAMES.search(t) for t in texts):
            found.append(ast.unparse(node))
    return found


def test_the_scan_finds_a_plain_comparison() -> None:
    # The check itself, on code that is wrong in the ways it looks for.
    bad = (
        "def check(expected, given):\n"
        "    if expected == given.lower():\n"
        "        return True\n"
        "    return hmac.new(k, b, sha256).hexdigest() != given\n"
    )
    assert plain_comparisons_of_secrets(bad) == [
        "expected == given.lower()",
        "hmac.new(k, b, sha256).hexdigest() != given",
    ]
    assert plain_comparisons_of_secrets("ok = prefix == 'sha256='") == []


def test_the_scan_covers_the_verifying_modules() -> None:
    names = {path.name for path in MODULES}
    assert {"hmac.py", "base.py", "tokens.py"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_signature_or_digest_is_compared_with_equality(path: Path) -> None:
    assert plain_comparisons_of_secrets(path.read_text()) == []


COMPARING = [ROOT / "events" / "webhooks" / "base.py", ROOT / "events" / "tokens.py"]


@pytest.mark.parametrize("path", COMPARING, ids=lambda p: p.name)
def test_the_modules_that_compare_digests_do_it_in_constant_time(path: Path) -> None:
    assert "hmac.compare_digest(" in path.read_text()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_is_verified_by_the_base(kind: str) -> None:
    # A kind says where its signature is; it does not compare signatures itself.
    assert type(KINDS[kind]).verify is WebhookKind.verify
    assert type(KINDS[kind]).parse is WebhookKind.parse
