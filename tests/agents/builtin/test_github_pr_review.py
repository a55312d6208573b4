"""The GitHub PR reviewer, driven by a real, signed pull_request webhook through the pipeline.

The Messages API and the GitHub API are both real HTTP servers in the test process
(tests/agents/conftest.py, fake_github.py); the comment the handler posts is counted there.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import models
from django.test import Client

import handlers.agents.github_pr_review as reviewer
from events.delivery import execute
from events.models import Attempt, Delivery, DeliveryStatus, Event, Source
from events.transitions import requeue
from events.webhooks.github import sign
from handlers.agents.github_pr_review import rules
from handlers.models import Step

from ..conftest import FakeMessagesAPI
from .fake_github import FakeGitHub

pytestmark = pytest.mark.django_db

FIXTURES = Path(reviewer.__file__).parent / "fixtures"
TOKEN = "ghp_canary0d9c1e57a4b2f8e6d3c0ffee"
WEBHOOK_SECRET = "gh-webhook-secret-for-tests"
DELIVERY_ID = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
PR = "Codertocat/Hello-World/2"
HEAD_SHA = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"  # the fixtures' pull_request.head.sha
MARKER = f"<!-- switchyard:github.pr_review:Codertocat/Hello-World#2@{HEAD_SHA} -->"
PATCH = "@@ -1 +1 @@\n-# Hello-World\n+# Hello-World, with more information"
REVIEW = {
    "risk": "low",
    "summary": "Rewords the README's title.",
    "reasons": ["Documentation only: README.md, +1 -1"],
    "checklist": ["Check the new README text is accurate", "Check the README still renders"],
}


@pytest.fixture
def github(settings: Any) -> Iterator[FakeGitHub]:
    server = FakeGitHub(token=TOKEN).start()
    server.files[PR] = [
        {
            "filename": "README.md",
            "status": "modified",
            "additions": 1,
            "deletions": 1,
            "changes": 2,
            "patch": PATCH,
        }
    ]
    settings.SWITCHYARD_GITHUB_API_URL = server.url
    settings.SWITCHYARD_GITHUB_TOKEN = TOKEN
    settings.SWITCHYARD_GITHUB_TIMEOUT = 5.0
    yield server
    server.stop()


@pytest.fixture
def source(routes: None) -> Source:
    return Source.objects.create(slug="gh", kind="github", secrets=[WEBHOOK_SECRET])


def post_webhook(
    client: Client,
    name: str = "pull_request.opened",
    *,
    delivery_id: str = DELIVERY_ID,
    head_sha: str = HEAD_SHA,
) -> Any:
    body = (FIXTURES / f"{name}.json").read_bytes()
    if head_sha != HEAD_SHA:
        document = json.loads(body)
        document["pull_request"]["head"]["sha"] = head_sha
        body = json.dumps(document).encode()
    headers = {
        "X-Hub-Signature-256": sign(WEBHOOK_SECRET, body),
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": delivery_id,
    }
    return client.post("/hooks/gh", data=body, content_type="application/json", headers=headers)


def receive(client: Client) -> Delivery:
    response = post_webhook(client)
    assert response.status_code == 202, response.content
    return Delivery.objects.get(event_id=response.json()["id"], handler="github.pr_review")


def run(delivery: Delivery) -> Delivery:
    execute(delivery.pk)
    delivery.refresh_from_db()
    return delivery


def script_review(fake_api: FakeMessagesAPI, answer: dict[str, Any] = REVIEW) -> None:
    fake_api.tool_use("list_changed_files", {}, id="toolu_1")
    fake_api.tool_use("get_diff", {"filename": "README.md"}, id="toolu_2")
    fake_api.text(f"Here is my review.\n```json\n{json.dumps(answer)}\n```")


def test_a_pull_request_is_reviewed_from_its_diff_and_commented_on(
    fake_api: FakeMessagesAPI,
    github: FakeGitHub,
    source: Source,
    client: Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given
    caplog.set_level(logging.DEBUG)
    script_review(fake_api)

    # when
    delivery = run(receive(client))

    # then: the review is the outcome, posted once as a comment with the marker
    assert delivery.status == DeliveryStatus.SUCCEEDED, delivery.last_error
    outcome = delivery.outcome
    assert {k: outcome[k] for k in REVIEW} == REVIEW
    assert (outcome["provider"], outcome["turns"]) == ("anthropic", 3)
    assert outcome["pull_request"] == {"repository": "Codertocat/Hello-World", "number": 2}
    body = outcome["comment"].pop("body")
    assert outcome["comment"] == {
        "posted": True,
        "id": 1,
        "url": "https://github.com/Codertocat/Hello-World/pull/2#issuecomment-1",
        "new": True,
    }
    assert body == "\n".join(
        [
            MARKER,
            "### Automated review: risk **low**",
            "",
            "Rewords the README's title.",
            "",
            "**Why**",
            "- Documentation only: README.md, +1 -1",
            "",
            "**Checklist**",
            "- [ ] Check the new README text is accurate",
            "- [ ] Check the README still renders",
            "",
            "<sub>Written by claude-sonnet-5-5 via Switchyard. It does not approve or block "
            "this pull request.</sub>",
        ]
    )
    assert [c["body"] for c in github.comments[PR]] == [body]
    assert [(r.method, r.path, r.query) for r in github.requests] == [
        ("GET", "/repos/Codertocat/Hello-World/pulls/2/files", {"per_page": "100", "page": "1"}),
        (
            "GET",
            "/repos/Codertocat/Hello-World/issues/2/comments",
            {"per_page": "100", "page": "1"},
        ),
        ("POST", "/repos/Codertocat/Hello-World/issues/2/comments", {}),
    ]
    assert {r.headers["authorization"] for r in github.requests} == {f"Bearer {TOKEN}"}
    # the trace: three model calls around two read tools; the model saw the diff
    steps = list(
        Step.objects.filter(attempt__delivery=delivery)
        .order_by("number")
        .values_list("kind", "name", "tool_kind", "error")
    )
    assert steps == [
        ("llm", "claude-sonnet-5-5", "", ""),
        ("tool", "list_changed_files", "read", ""),
        ("llm", "claude-sonnet-5-5", "", ""),
        ("tool", "get_diff", "read", ""),
        ("llm", "claude-sonnet-5-5", "", ""),
    ]
    listed = Step.objects.get(attempt__delivery=delivery, name="list_changed_files").output
    assert json.loads(listed) == {
        "files": [{"filename": "README.md", "status": "modified", "additions": 1, "deletions": 1}],
        "count": 1,
        "complete": True,
    }
    assert fake_api.requests[2].body["messages"][-1]["content"][0]["content"] == PATCH
    # the token is in no stored row and no log line
    assert "posted review comment 1 on Codertocat/Hello-World#2" in caplog.text
    assert [v for v in _every_text_value(Step, Attempt, Delivery, Event) if TOKEN in v] == []
    assert TOKEN not in caplog.text


def test_a_redelivered_webhook_or_requeued_run_posts_no_second_comment(
    fake_api: FakeMessagesAPI, github: FakeGitHub, source: Source, client: Client
) -> None:
    script_review(fake_api)
    delivery = run(receive(client))
    assert delivery.outcome["comment"]["new"] is True

    # GitHub redelivers the same webhook: the same event, no new delivery
    again = post_webhook(client)
    assert (again.status_code, again.json()["duplicate"]) == (200, True)
    assert Delivery.objects.filter(handler="github.pr_review").count() == 1

    # an operator runs the delivery again: the review is redone, the comment is not reposted
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.DEAD_LETTERED)
    assert requeue([delivery.pk]) == 1
    fake_api.text(json.dumps(REVIEW))
    rerun = run(delivery)

    assert rerun.status == DeliveryStatus.SUCCEEDED
    assert rerun.outcome["comment"]["id"] == 1
    assert rerun.outcome["comment"]["new"] is False
    assert len(github.comments[PR]) == 1
    assert len(github.posts()) == 1


def delivered(response: Any) -> Delivery:
    assert response.status_code == 202, response.content
    return Delivery.objects.get(event_id=response.json()["id"], handler="github.pr_review")


def test_events_about_one_head_commit_post_one_comment(
    fake_api: FakeMessagesAPI, github: FakeGitHub, source: Source, client: Client
) -> None:
    # given the PR was reviewed when it was opened
    script_review(fake_api)
    first = run(receive(client))
    assert first.outcome["comment"]["new"] is True

    # when GitHub sends a synchronize for the same head commit, and the opened event again
    # under a new delivery id (two new events, two new deliveries)
    script_review(fake_api)
    script_review(fake_api)
    later = [
        run(delivered(post_webhook(client, "pull_request.synchronize", delivery_id="sync-1"))),
        run(delivered(post_webhook(client, delivery_id="opened-again"))),
    ]

    # then each is reviewed, and the PR still has one comment
    assert [d.status for d in later] == [DeliveryStatus.SUCCEEDED] * 2
    assert [d.outcome["comment"]["new"] for d in later] == [False, False]
    assert {d.outcome["comment"]["id"] for d in [first, *later]} == {1}
    assert len(github.posts()) == 1
    assert len(github.comments[PR]) == 1


def test_a_new_head_commit_gets_a_comment_of_its_own(
    fake_api: FakeMessagesAPI, github: FakeGitHub, source: Source, client: Client
) -> None:
    script_review(fake_api)
    run(receive(client))
    script_review(fake_api)
    pushed = "0" * 39 + "1"

    delivery = run(
        delivered(
            post_webhook(client, "pull_request.synchronize", delivery_id="s2", head_sha=pushed)
        )
    )

    assert delivery.outcome["comment"]["new"] is True
    bodies = [c["body"] for c in github.comments[PR]]
    assert [b.splitlines()[0] for b in bodies] == [
        MARKER,
        f"<!-- switchyard:github.pr_review:Codertocat/Hello-World#2@{pushed} -->",
    ]


def test_an_event_that_names_no_head_commit_is_dead_lettered_without_a_review(
    fake_api: FakeMessagesAPI, github: FakeGitHub, source: Source, client: Client
) -> None:
    delivery = run(delivered(post_webhook(client, delivery_id="no-head", head_sha="main")))

    assert delivery.status == DeliveryStatus.DEAD_LETTERED
    assert delivery.last_error == (
        "the event names no pull request (repository.full_name 'owner/name', "
        "pull_request.number and pull_request.head.sha)"
    )
    assert (fake_api.requests, github.requests) == ([], [])


def test_a_comment_whose_answer_was_lost_is_found_by_its_marker_on_retry(
    fake_api: FakeMessagesAPI, github: FakeGitHub, source: Source, client: Client
) -> None:
    # given: GitHub creates the comment but the answer is a 502
    github.lose_next_post(502)
    script_review(fake_api)

    # when
    first = run(receive(client))

    # then the delivery is retried (retry-after: 0), and the retry finds the comment
    assert first.status == DeliveryStatus.RETRYING
    assert first.last_error == (
        "GitHub answered 502 to POST /repos/Codertocat/Hello-World/issues/2/comments: Server Error"
    )
    fake_api.text(json.dumps(REVIEW))
    second = run(first)
    assert second.status == DeliveryStatus.SUCCEEDED, second.last_error
    assert len(github.comments[PR]) == 1
    assert len(github.posts()) == 1
    comment = second.outcome["comment"]
    assert (comment["posted"], comment["id"], comment["new"]) == (True, 1, False)


def test_without_a_token_it_reviews_the_payload_and_makes_no_github_request(
    fake_api: FakeMessagesAPI, github: FakeGitHub, source: Source, client: Client, settings: Any
) -> None:
    settings.SWITCHYARD_GITHUB_TOKEN = ""
    fake_api.tool_use("list_changed_files", {}, id="toolu_1")
    fake_api.text(json.dumps(REVIEW))

    delivery = run(receive(client))

    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert github.requests == []
    tool = Step.objects.get(attempt__delivery=delivery, kind="tool")
    assert tool.error == (
        "GitHubUnavailable: the GitHub API is not available without a token "
        "(SWITCHYARD_GITHUB_TOKEN is not set); work from the event payload only"
    )
    told = fake_api.requests[1].body["messages"][-1]["content"][0]
    assert told["is_error"] is True and "not available without a token" in told["content"]
    comment = delivery.outcome["comment"]
    assert (comment["posted"], comment["reason"]) == (
        False,
        "SWITCHYARD_GITHUB_TOKEN is not set; the comment is recorded here only",
    )
    assert comment["body"].startswith(MARKER)


def test_offline_provider_reviews_by_rules_and_never_posts(
    fake_api: FakeMessagesAPI, github: FakeGitHub, source: Source, client: Client, settings: Any
) -> None:
    settings.SWITCHYARD_AGENT_PROVIDER = "offline"

    delivery = run(receive(client))

    assert delivery.status == DeliveryStatus.SUCCEEDED
    outcome = delivery.outcome
    assert (outcome["provider"], outcome["model"]) == ("offline", "offline")
    assert outcome["text"].startswith('[offline provider] {"risk": "low"')
    assert outcome["risk"] == "low"
    assert outcome["reasons"] == ["1 file(s) changed, +1 -1 lines"]
    assert outcome["summary"] == "Update the README with new information. (changes into master)."
    assert fake_api.requests == []
    # Even with a token set, keyword rules are never posted on a real pull request.
    assert github.comments.get(PR, []) == []
    assert (outcome["comment"]["posted"], outcome["comment"]["reason"]) == (
        False,
        "the offline provider made this review; it is recorded here only",
    )
    assert outcome["comment"]["body"].endswith(
        "<sub>Written by keyword rules (offline provider; no model was called). "
        "It does not approve or block this pull request.</sub>"
    )
    assert list(Step.objects.filter(attempt__delivery=delivery).values_list("kind", "name")) == [
        ("llm", "offline")
    ]


def test_offline_rules_rate_sensitive_or_large_changes_high() -> None:
    payload = json.loads((FIXTURES / "pull_request.synchronize.json").read_text())
    payload["pull_request"].update(title="Rotate auth tokens", body="", additions=40)

    review = rules.review(payload, "github.pull_request.synchronize")

    assert review["risk"] == "high"
    assert review["reasons"] == [
        "1 file(s) changed, +40 -1 lines",
        "the title, description or branch mentions: auth, tokens",
        "new commits were pushed; earlier review comments may be out of date",
    ]
    assert "Ask the author for a description of the change and why" in review["checklist"]


def test_an_answer_that_is_not_the_review_dead_letters_and_posts_nothing(
    fake_api: FakeMessagesAPI, github: FakeGitHub, source: Source, client: Client
) -> None:
    fake_api.text("Looks good to me, ship it!")

    delivery = run(receive(client))

    assert delivery.status == DeliveryStatus.DEAD_LETTERED
    assert delivery.error_class == "handlers.llm.answers.AnswerFormatError"
    assert delivery.last_error == "the answer holds no JSON object: 'Looks good to me, ship it!'"
    assert github.posts() == []


def test_a_github_refusal_to_comment_dead_letters_with_its_message(
    fake_api: FakeMessagesAPI, github: FakeGitHub, source: Source, client: Client
) -> None:
    github.post_status = 403
    fake_api.text(json.dumps(REVIEW))

    delivery = run(receive(client))

    assert delivery.status == DeliveryStatus.DEAD_LETTERED
    assert delivery.last_error == (
        "GitHub answered 403 to POST /repos/Codertocat/Hello-World/issues/2/comments: "
        "Resource not accessible by integration"
    )


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


def _every_text_value(*model_classes: type[models.Model]) -> list[str]:
    values: list[str] = []
    for model in model_classes:
        fields = [
            f.name
            for f in model._meta.concrete_fields
            if isinstance(f, models.CharField | models.TextField | models.JSONField)
        ]
        for row in model._default_manager.values_list(*fields):
            values += [json.dumps(value) for value in row]
    return values


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


def test_the_model_sees_a_trimmed_view_of_the_payload(make_ctx: Any) -> None:
    """About 1 KB of the ~25 KB webhook: the PR's title, body, size and refs, no URLs."""
    payload = json.loads((FIXTURES / "pull_request.opened.json").read_text())
    message = reviewer.reviewer.first_message(make_ctx(payload), "Review it.")

    view = json.loads(message.split("<event_payload>\n", 1)[1].split("\n</event_payload>")[0])
    assert view["repository"] == payload["repository"]["full_name"]
    assert view["pull_request"]["title"] == payload["pull_request"]["title"]
    assert view["pull_request"]["base"] == payload["pull_request"]["base"]["ref"]
    assert "_url" not in message
    assert len(message) < len(json.dumps(payload)) / 5


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
