"""The GitHub PR reviewer's comment: one per pull request head commit, whatever redelivers or
reruns it, found by its marker when GitHub's answer was lost, and GitHub's refusal reported."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from events.models import Delivery, DeliveryStatus, Source
from events.transitions import requeue

from ...conftest import FakeMessagesAPI
from ..fake_github import FakeGitHub
from .helpers import (
    MARKER,
    PR,
    REVIEW,
    delivered,
    post_webhook,
    receive,
    run,
    script_review,
)

pytestmark = pytest.mark.django_db


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
