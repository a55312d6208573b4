"""Settings live with their owners (events/conf.py, handlers/conf.py, each built-in agent's
conf.py) and a bad one is named, with why, by `manage.py check`, and stops a worker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from agents_project.appsettings import refuse_bad_settings
from events import conf

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.parametrize(
    ("variable", "value", "why"),
    [
        ("SWITCHYARD_LEASE_SECONDS", "0.5", "must be at least 1"),
        ("SWITCHYARD_SWEEP_GRACE", "soon", "not a number"),
        ("SWITCHYARD_MAX_BODY_BYTES", "0", "must be at least 1"),
        ("SWITCHYARD_MAX_EMIT_DEPTH", "40000", "must be at most 32766"),
        ("SWITCHYARD_MAX_DELIVERIES_PER_EVENT", "0", "must be at least 1"),
        ("SWITCHYARD_AGENT_PROVIDER", "claude", "must be one of anthropic, offline"),
        ("ANTHROPIC_TIMEOUT", "0", "must be at least 0.1"),
        ("SWITCHYARD_GITHUB_TIMEOUT", "-1", "must be at least 0.1"),
        ("SWITCHYARD_BRIEFING_RECIPIENTS", "ops@example.com, nobody", "'nobody' is not an email"),
        ("SWITCHYARD_SUPPORT_QUEUES_JSON", '{"sales": "x"}', "names an unknown category 'sales'"),
    ],
)
def test_check_names_a_bad_setting_and_why(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, why: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(SystemCheckError) as caught:
        call_command("check")

    assert f"{variable}={value!r}: " in str(caught.value)
    assert why in str(caught.value)
    with pytest.raises(ImproperlyConfigured, match=variable):
        refuse_bad_settings()


def test_a_value_set_in_django_settings_wins_over_the_environment_and_is_checked(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    monkeypatch.setenv("SWITCHYARD_LEASE_SECONDS", "45")
    assert conf.LEASE_SECONDS.get() == 45.0
    settings.SWITCHYARD_LEASE_SECONDS = 0
    with pytest.raises(
        ImproperlyConfigured, match="SWITCHYARD_LEASE_SECONDS=0: must be at least 1"
    ):
        conf.LEASE_SECONDS.get()
    with pytest.raises(SystemCheckError, match="SWITCHYARD_LEASE_SECONDS=0"):
        call_command("check")


def test_the_defaults_pass_the_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SWITCHYARD_") and not name.startswith("SWITCHYARD_TEST_"):
            monkeypatch.delenv(name)
    call_command("check")
    refuse_bad_settings()


def test_a_worker_with_a_bad_setting_does_not_start() -> None:
    env = {
        **os.environ,
        "SWITCHYARD_LEASE_SECONDS": "0",
        "DJANGO_SETTINGS_MODULE": "tests.settings",
    }
    done = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "agents_project", "worker", "-P", "solo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "SWITCHYARD_LEASE_SECONDS='0': must be at least 1" in done.stderr
