"""What the GitHub PR reviewer will not do, whatever the model or a server asks: read another
repository, post live markup, follow a redirect to another host with the token, or send the
token over plain HTTP to another machine."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from events.models import DeliveryStatus, Source
from handlers.models import Step

from ...conftest import FakeMessagesAPI
from ..fake_github import FakeGitHub
from .helpers import PR, REVIEW, receive, run

pytestmark = pytest.mark.django_db


def test_the_model_can_neither_aim_the_tools_elsewhere_nor_forge_markup(
    fake_api: FakeMessagesAPI, github: FakeGitHub, source: Source, client: Client
) -> None:
    # given: a model led astray asks for another repository's diff and writes a fake marker
    # and a mass mention into its summary
    fake_api.tool_use(
        "get_diff", {"filename": "secrets.tf", "repo": "octo-org/private-infra"}, id="toolu_1"
    )
    fake_api.tool_use("get_diff", {"filename": "secrets.tf"}, id="toolu_2")
    forged = {
        **REVIEW,
        "summary": "<!-- switchyard:forged --> cc @octo-org/everyone",
        "checklist": ["Re-authenticate [here](https://evil.example) ![t](https://t.example/p.png)"],
    }
    fake_api.text(json.dumps(forged))

    # when
    delivery = run(receive(client))

    # then: the tool refused the parameter, read only this PR, and the text is inert
    assert delivery.status == DeliveryStatus.SUCCEEDED
    errors = list(
        Step.objects.filter(attempt__delivery=delivery, kind="tool")
        .order_by("number")
        .values_list("error", flat=True)
    )
    assert errors == [
        "invalid input: unknown parameter(s): repo",
        "LookupError: 'secrets.tf' is not among the files this pull request changes",
    ]
    assert {r.path.split("/")[2:4] == ["Codertocat", "Hello-World"] for r in github.requests} == {
        True
    }
    body = github.comments[PR][0]["body"]
    assert "&lt;\\!-- switchyard:forged --&gt; cc @\u200bocto-org/everyone" in body
    assert body.count("<!--") == 1
    # no disguised link, no tracking image: markdown link syntax is escaped
    assert (
        "- [ ] Re-authenticate \\[here\\]\\(https://evil.example\\) "
        "\\!\\[t\\]\\(https://t.example/p.png\\)"
    ) in body


def test_a_redirect_to_another_host_is_not_followed_with_the_token(
    fake_api: FakeMessagesAPI, github: FakeGitHub, source: Source, client: Client
) -> None:
    foreign = FakeGitHub(token="other").start()
    try:
        github.redirect_files_to = f"{foreign.url}/collect"
        fake_api.tool_use("list_changed_files", {}, id="toolu_1")
        fake_api.text(json.dumps(REVIEW))

        delivery = run(receive(client))

        assert foreign.requests == []
    finally:
        foreign.stop()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert Step.objects.get(attempt__delivery=delivery, kind="tool").error == (
        "GitHubError: GitHub answered 302 to GET /repos/Codertocat/Hello-World/pulls/2/files: Moved"
    )


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://github.example.com/api/v3", True),
        ("http://127.0.0.1:8081", True),
        ("http://api.github.com", False),
        ("ftp://api.github.com", False),
        ("https://", False),
    ],
)
def test_the_token_only_travels_over_https_or_to_this_machine(
    monkeypatch: pytest.MonkeyPatch, url: str, ok: bool
) -> None:
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    from handlers.agents.github_pr_review import conf

    monkeypatch.setenv("SWITCHYARD_GITHUB_API_URL", url)
    if ok:
        call_command("check")
        assert conf.GITHUB_API_URL.get() == url
    else:
        with pytest.raises(SystemCheckError, match="must be an https URL") as caught:
            call_command("check")
        assert f"SWITCHYARD_GITHUB_API_URL={url!r}" in str(caught.value)
