"""manage.py create_source for every provider kind, with the settings a kind needs."""

from __future__ import annotations

import pytest
from django.core.management import CommandError

from events.models import Source

from ..ingest.test_commands import run
from .conftest import STRIPE_NEW, SW_NEW

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("kind", "secret"),
    [
        ("github", "gh-secret"),
        ("stripe", STRIPE_NEW),
        ("slack", "s"),
        ("standard_webhooks", SW_NEW),
    ],
)
def test_every_provider_kind_can_be_created(kind: str, secret: str) -> None:
    out, err = run("create_source", "--slug=src", f"--kind={kind}", f"--secret={secret}")
    assert out == "http://127.0.0.1:8000/hooks/src\n"
    assert err == f"source src created (kind {kind}, 1 secret(s))\n"
    source = Source.objects.get()
    assert (source.kind, source.secrets, source.settings) == (kind, [secret], {})


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
