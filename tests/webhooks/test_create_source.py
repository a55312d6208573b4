"""manage.py create_source for every provider kind, with the settings a kind needs."""

from __future__ import annotations

import pytest
from django.core.management import CommandError

from events.models import Source
from events.webhooks import KINDS

from ..ingest.test_commands import run
from .conftest import KIND_NAMES, SW_NEW, vector

pytestmark = pytest.mark.django_db


def option_flags(kind: str) -> set[str]:
    return {option.cli_flag for option in KINDS[kind].options}


# (kind, a flag it does not take): every option of every other kind, from the registry.
FOREIGN_FLAGS = [
    (name, option.cli_flag)
    for name in KIND_NAMES
    for other in KIND_NAMES
    for option in KINDS[other].options
    if option.cli_flag not in option_flags(name)
]


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_every_provider_kind_can_be_created(kind: str) -> None:
    secret = vector(kind)["secret"]
    out, err = run("create_source", "--slug=src", f"--kind={kind}", f"--secret={secret}")
    assert out == "http://127.0.0.1:8000/hooks/src\n"
    assert err == f"source src created (kind {kind}, 1 secret(s))\n"
    source = Source.objects.get()
    assert (source.kind, source.secrets, source.settings) == (kind, [secret], {})


@pytest.mark.parametrize(("kind", "flag"), FOREIGN_FLAGS)
def test_an_option_of_another_kind_is_refused(kind: str, flag: str) -> None:
    owners = " and ".join(name for name in KIND_NAMES if flag in option_flags(name))
    secret = vector(kind)["secret"]
    with pytest.raises(CommandError) as raised:
        run("create_source", "--slug=src", f"--kind={kind}", f"--secret={secret}", f"{flag}=x")
    assert str(raised.value) == f"{flag} is only for {owners} sources"
    assert Source.objects.count() == 0


@pytest.mark.parametrize(
    ("kind", "flag"), [(name, flag) for name in KIND_NAMES for flag in sorted(option_flags(name))]
)
def test_an_empty_option_is_refused(kind: str, flag: str) -> None:
    secret = vector(kind)["secret"]
    with pytest.raises(CommandError) as raised:
        run("create_source", "--slug=src", f"--kind={kind}", f"--secret={secret}", f"{flag}= ")
    assert str(raised.value) == f"{flag} must not be empty"
    assert Source.objects.count() == 0


def test_slack_bot_user_is_stored_in_settings_and_kept_on_update() -> None:
    run("create_source", "--slug=chat", "--kind=slack", "--secret=s", "--slack-bot-user=U123")
    assert Source.objects.get().settings == {"bot_user": "U123"}
    run("create_source", "--slug=chat", "--kind=slack", "--secret=t")
    assert (Source.objects.get().settings, Source.objects.get().secrets) == (
        {"bot_user": "U123"},
        ["t"],
    )


def test_type_prefix_is_stored_for_standard_webhooks() -> None:
    run(
        "create_source",
        "--slug=clerk",
        "--kind=standard_webhooks",
        f"--secret={SW_NEW}",
        "--type-prefix=clerk",
    )
    assert Source.objects.get().settings == {"type_prefix": "clerk"}


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["--kind=stripe", "--secret=sk_live_1"],
            "--secret: a Stripe signing secret starts with whsec_",
        ),
        (
            ["--kind=standard_webhooks", "--secret=whsec_not base64!"],
            "--secret: a Standard Webhooks secret is whsec_ followed by a base64 key",
        ),
        (
            ["--kind=github", "--secret=s", "--slack-bot-user=U1"],
            "--slack-bot-user is only for slack sources",
        ),
        (
            ["--kind=slack", "--secret=s", "--type-prefix=x"],
            "--type-prefix is only for standard_webhooks sources",
        ),
        (
            ["--kind=slack", "--secret=s", "--slack-bot-user= "],
            "--slack-bot-user must not be empty",
        ),
        (["--kind=github"], "a github source needs at least one --secret"),
    ],
)
def test_create_source_refuses_what_a_kind_cannot_use(args: list[str], error: str) -> None:
    with pytest.raises(CommandError) as raised:
        run("create_source", "--slug=src", *args)
    assert str(raised.value) == error
    assert Source.objects.count() == 0


def test_hmac_replay_options_are_stored_in_settings() -> None:
    run(
        "create_source",
        "--slug=shop",
        "--kind=hmac",
        "--secret=s",
        "--timestamp-header= X-Timestamp ",
        "--tolerance-seconds=60",
        "--dedupe-window-seconds=0",
    )
    assert Source.objects.get().settings == {
        "timestamp_header": "X-Timestamp",
        "tolerance_seconds": 60,
        "dedupe_window_seconds": 0,
    }


TOLERANCE = "--tolerance-seconds must be a whole number of seconds from 1 to 3600"
WINDOW = "--dedupe-window-seconds must be a whole number of seconds from 0 to 604800"


@pytest.mark.parametrize(
    ("option", "error"),
    [
        ("--tolerance-seconds=0", TOLERANCE),
        ("--tolerance-seconds=1.5", TOLERANCE),
        ("--tolerance-seconds=\u0663", TOLERANCE),  # an Arabic-Indic 3: int() would take it
        ("--dedupe-window-seconds=-1", WINDOW),
        ("--dedupe-window-seconds=week", WINDOW),
        ("--timestamp-header=X-Zeit-\u00e9", "--timestamp-header must be a header name"),
    ],
)
def test_hmac_options_are_checked_as_the_admin_checks_them(option: str, error: str) -> None:
    with pytest.raises(CommandError) as raised:
        run("create_source", "--slug=shop", "--kind=hmac", "--secret=s", option)
    assert str(raised.value) == error
    assert Source.objects.count() == 0


@pytest.mark.parametrize(
    ("kind", "settings", "problem"),
    [
        ("slack", {"bot_user": 5}, "bot_user must be a non-empty string"),
        ("standard_webhooks", {"type_prefix": ""}, "type_prefix must be a non-empty string"),
        ("hmac", {"timestamp_header": None, "tolerance_seconds": True}, "tolerance_seconds must "
         "be a whole number of seconds from 1 to 3600"),
        ("hmac", {"rate_limit_per_minute": 5, "timestamp_header": "X-T"}, None),
        ("github", {"anything": "else"}, None),
    ],
)  # fmt: skip
def test_a_kind_checks_the_settings_its_options_name(
    kind: str, settings: dict[str, object], problem: str | None
) -> None:
    # The admin's settings field is checked with this (tests/admin: hmac's replay settings).
    assert KINDS[kind].settings_problem(settings) == problem
