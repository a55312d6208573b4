"""The GitHub PR reviewer, driven by a real, signed pull_request webhook through the pipeline:
the review it writes from the diff, with a model, without a token, offline, or from a bad
answer.

The Messages API and the GitHub API are both real HTTP servers in the test process
(tests/agents/conftest.py, fake_github.py); the comment the handler posts is counted there.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.db import models
from django.test import Client

import handlers.agents.github_pr_review as reviewer
from events.models import Attempt, Delivery, DeliveryStatus, Event, Source
from handlers.agents.github_pr_review import rules
from handlers.models import Step

from ...conftest import FakeMessagesAPI
from ..fake_github import FakeGitHub
from .helpers import FIXTURES, MARKER, PATCH, PR, REVIEW, TOKEN, receive, run, script_review

pytestmark = pytest.mark.django_db


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
