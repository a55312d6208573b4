"""`make demo` / `make run`: the commands `up` runs before it starts anything, ensure_admin,
demo_setup and demo_feed, each safe to run again."""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from events.models import Delivery, Event, Source

from .helpers import free_port, run


@pytest.fixture
def var_dir(settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private var/ for the commands, and no admin password from the environment."""
    settings.VAR_DIR = tmp_path
    monkeypatch.delenv("DJANGO_ADMIN_PASSWORD", raising=False)
    return tmp_path


# --- ensure_admin -------------------------------------------------------------------------


@pytest.mark.django_db
def test_ensure_admin_twice_creates_one_superuser_with_a_stable_password(var_dir: Path) -> None:
    # when
    first = run("ensure_admin")
    second = run("ensure_admin")

    # then one superuser, whose password is in a file only its owner can read
    users = get_user_model().objects.filter(username="admin")
    assert users.count() == 1
    user = users.get()
    assert user.is_superuser and user.is_staff and user.is_active
    path = var_dir / "admin-password"
    password = path.read_text().strip()
    assert len(password) == 20
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert user.check_password(password)
    # and both runs say how to log in
    assert "admin user 'admin' created. Log in at http://127.0.0.1:8000/admin/" in first
    assert f"password: {password}" in first
    assert "admin user 'admin' exists. Log in at http://127.0.0.1:8000/admin/" in second
    assert f"password: {password}   (saved in {path})" in second
    assert path.read_text().strip() == password


@pytest.mark.django_db
def test_ensure_admin_reuses_the_saved_password_for_a_new_database(var_dir: Path) -> None:
    # given an admin created once, then lost with the database
    run("ensure_admin")
    password = (var_dir / "admin-password").read_text().strip()
    get_user_model().objects.all().delete()

    # when
    run("ensure_admin")

    # then
    assert get_user_model().objects.get(username="admin").check_password(password)
    assert (var_dir / "admin-password").read_text().strip() == password


@pytest.mark.django_db
def test_ensure_admin_takes_the_password_from_the_environment(
    var_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    monkeypatch.setenv("DJANGO_ADMIN_PASSWORD", "correct-horse-battery")

    # when
    out = run("ensure_admin", "--base-url", "http://127.0.0.1:8765")

    # then the password is used, neither saved nor printed
    assert get_user_model().objects.get(username="admin").check_password("correct-horse-battery")
    assert not (var_dir / "admin-password").exists()
    assert "correct-horse-battery" not in out
    assert "Log in at http://127.0.0.1:8765/admin/" in out
    assert "password: the value of DJANGO_ADMIN_PASSWORD" in out


@pytest.mark.django_db
def test_ensure_admin_says_when_the_saved_password_is_out_of_date(var_dir: Path) -> None:
    # given an admin whose password was changed after it was saved
    run("ensure_admin")
    user = get_user_model().objects.get(username="admin")
    user.set_password("changed-in-the-admin")
    user.save()

    # when
    out = run("ensure_admin")

    # then
    saved = (var_dir / "admin-password").read_text().strip()
    assert saved not in out
    assert "changed since it was saved" in out
    assert "manage.py changepassword admin" in out


# --- demo_setup ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_demo_setup_twice_keeps_one_source_and_one_secret(var_dir: Path) -> None:
    # when
    first = run("demo_setup")
    second = run("demo_setup")

    # then
    path = var_dir / "demo-source-secret"
    secret = path.read_text().strip()
    assert re.fullmatch(r"[0-9a-f]{64}", secret)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    source = Source.objects.get(slug="demo")
    assert (source.kind, source.secrets, source.enabled) == ("hmac", [secret], True)
    assert "demo source 'demo' created: POST http://127.0.0.1:8000/hooks/demo" in first
    assert "demo source 'demo' up to date" in second
    assert secret not in first + second
    # and the sources the built-in agents' recorded events come through, same way
    for slug, kind in (("demo-github", "github"), ("demo-stripe", "stripe")):
        path = var_dir / f"{slug}-secret"
        provider_secret = path.read_text().strip()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        provider = Source.objects.get(slug=slug)
        assert (provider.kind, provider.secrets) == (kind, [provider_secret])
        assert f"demo source {slug!r} created (kind {kind}" in first
        assert f"demo source {slug!r} up to date" in second
        assert provider_secret not in first + second
    assert Source.objects.count() == 3
    # and the default schedules
    assert "daily-briefing" in first


@pytest.mark.django_db
def test_demo_setup_repairs_a_changed_demo_source(var_dir: Path) -> None:
    # given a demo source someone disabled and re-keyed
    run("demo_setup")
    secret = (var_dir / "demo-source-secret").read_text().strip()
    Source.objects.filter(slug="demo").update(enabled=False, secrets=["something-else"])

    # when
    out = run("demo_setup")

    # then
    source = Source.objects.get(slug="demo")
    assert (source.kind, source.secrets, source.enabled) == ("hmac", [secret], True)
    assert "demo source 'demo' updated" in out


# --- demo_feed ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_demo_feed_posts_the_sample_set(var_dir: Path, routes: None, live_server: Any) -> None:
    # given the demo source and an admin, and the web server
    run("demo_setup")
    run("ensure_admin")
    port = urlsplit(live_server.url).port
    assert port is not None

    # when
    out = run("demo_feed", "--port", str(port), "--wait", "--wait-timeout", "10")

    # then five new events are stored, with the demo handlers' deliveries
    events = {e.external_id: e for e in Event.objects.filter(type__startswith="reservation.")}
    assert len(events) == 5
    run_id = next(iter(events)).split("-", 1)[1].rsplit("-", 1)[0]
    assert sorted(events) == [f"demo-{run_id}-{n}" for n in range(1, 6)]
    types = {eid.rsplit("-", 1)[1]: e.type for eid, e in events.items()}
    assert types == {
        "1": "reservation.cancelled",
        "2": "reservation.cancelled",
        "3": "reservation.cancelled",
        "4": "reservation.cancelled",
        "5": "reservation.no_show",
    }
    assert events[f"demo-{run_id}-3"].payload["simulate"] == "permanent_failure"
    assert events[f"demo-{run_id}-4"].payload["simulate"] == "transient_failure"
    assert events[f"demo-{run_id}-5"].status == "ignored"
    handlers = sorted(
        Delivery.objects.filter(event__in=events.values()).values_list(
            "event__external_id", "handler"
        )
    )
    assert handlers == sorted(
        (f"demo-{run_id}-{n}", h) for n in range(1, 5) for h in ("demo.notify_guest", "demo.rebook")
    )
    # and the answers were 202 for each new event and 200 for the duplicate
    statuses = re.findall(r"^  (\d{3})  (\S+)\s+(\S+)", out, flags=re.MULTILINE)
    assert statuses == [
        ("202", "reservation.cancelled", f"demo-{run_id}-1"),
        ("202", "reservation.cancelled", f"demo-{run_id}-2"),
        ("202", "reservation.cancelled", f"demo-{run_id}-3"),
        ("202", "reservation.cancelled", f"demo-{run_id}-4"),
        ("202", "reservation.no_show", f"demo-{run_id}-5"),
        ("200", "reservation.cancelled", f"demo-{run_id}-1"),
        ("202", "ticket.created", "helpdesk"),
        ("202", "alert.fired", "monitoring"),
        ("202", "github.pull_request.opened", "GitHub"),
        ("202", "stripe.invoice.payment_failed", "Stripe"),
    ]
    # and one recorded event per built-in agent, each with its agent's delivery, the GitHub
    # and Stripe ones through their own signed sources, the briefing as its schedule's tick
    agents = sorted(
        Delivery.objects.exclude(event__in=events.values()).values_list(
            "event__source__slug", "event__type", "handler"
        )
    )
    assert agents == [
        ("demo", "alert.fired", "alerts.triage"),
        ("demo", "ticket.created", "support.triage"),
        ("demo-github", "github.pull_request.opened", "github.pr_review"),
        ("demo-stripe", "stripe.invoice.payment_failed", "payments.recovery"),
        ("schedules", "schedule.daily-briefing", "briefing.daily"),
    ]
    assert "schedule 'daily-briefing' run now" in out and ": published)" in out
    assert f"http://127.0.0.1:{port}/admin/handlers/approval/" in out
    assert f"http://127.0.0.1:{port}/admin/events/event/" in out
    password = (var_dir / "admin-password").read_text().strip()
    assert f"password: {password}" in out


@pytest.mark.django_db(transaction=True)
def test_demo_feed_twice_adds_new_events(var_dir: Path, routes: None, live_server: Any) -> None:
    run("demo_setup")
    port = str(urlsplit(live_server.url).port)

    run("demo_feed", "--port", port)
    second = run("demo_feed", "--port", port)

    # 5 samples + 4 agent events per run through the demo sources
    fed = Event.objects.filter(source__slug__in=["demo", "demo-github", "demo-stripe"])
    assert fed.count() == 2 * 9
    # and a briefing per run, unless the first is still in flight (overlap policy skip: when
    # no worker runs the first one)
    briefings = Event.objects.filter(type="schedule.daily-briefing").count()
    assert (briefings, ": skipped)" in second) in ((1, True), (2, False))


@pytest.mark.django_db
def test_demo_feed_gives_up_when_the_web_server_never_answers(var_dir: Path) -> None:
    run("demo_setup")

    with pytest.raises(CommandError, match=r"did not answer GET /healthz with 200 within 1 s"):
        run("demo_feed", "--port", str(free_port()), "--wait", "--wait-timeout", "1")


@pytest.mark.django_db
def test_demo_feed_needs_the_demo_source() -> None:
    with pytest.raises(CommandError, match=r"run manage\.py demo_setup"):
        run("demo_feed", "--port", str(free_port()))
