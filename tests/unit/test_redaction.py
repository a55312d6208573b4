"""events.redaction: the environment's secrets, read once per lookup-memo period."""

from __future__ import annotations

from typing import Any

import pytest

from events.redaction import ENVIRONMENT, secret_values

NEW_KEY = "sk-new-partner-key-2f8e41c09d"


def test_an_environment_secret_set_while_running_is_redacted_once_the_memo_period_ends(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    # given the lookup memo on, with a clock the test moves, and the environment read once
    settings.SWITCHYARD_LOOKUP_CACHE_SECONDS = 5.0
    now = [1000.0]
    ENVIRONMENT.clear()
    monkeypatch.setattr(ENVIRONMENT, "clock", lambda: now[0])
    try:
        secret_values()

        # when a secret-looking variable is set, then read within the period and after it
        monkeypatch.setenv("PARTNER_API_KEY", NEW_KEY)
        within = secret_values()
        now[0] += 5.0
        after = secret_values()
    finally:
        ENVIRONMENT.clear()

    # then the environment was not scanned again within the period, and was after it
    assert NEW_KEY not in within
    assert NEW_KEY in after


def test_with_the_memo_off_every_read_sees_the_environment(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.SWITCHYARD_LOOKUP_CACHE_SECONDS = 0
    secret_values()
    monkeypatch.setenv("PARTNER_API_KEY", NEW_KEY)
    assert NEW_KEY in secret_values()
