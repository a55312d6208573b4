"""An event's source decides what it may trigger: a pull request published through the API with
an ordinary token reaches no GitHub agent, while GitHub's own signed webhook does.

Real parts: the web app behind Django's live server (HTTP on loopback), a real Celery worker,
the real ``anthropic`` SDK against a fake Messages API and the PR reviewer against a fake
GitHub, both real HTTP servers in this process.
"""

from __future__ import annotations

import copy
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import handlers.agents.github_pr_review as reviewer
from events.models import Delivery, DeliveryStatus, Event, EventStatus, Route, Source
from events.webhooks.github import sign
from tests.agents.builtin.fake_github import FakeGitHub
from tests.agents.conftest import FakeMessagesAPI
from tests.conftest import Worker, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

QUEUE = "source-scoping"
GITHUB_TOKEN = "ghp_scoping0a1b2c3d4e5f60718293a4b5c6"
WEBHOOK_SECRET = "gh-webhook-secret-for-scoping"
PR = "Codertocat/Hello-World/2"
FIXTURE = Path(reviewer.__file__).parent / "fixtures" / "pull_request.opened.json"
REVIEW = {"risk": "low", "summary": "Docs only.", "reasons": ["README"], "checklist": ["Read"]}


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    server = FakeGitHub(token=GITHUB_TOKEN)
    server.files[PR] = [
        {"filename": "README.md", "status": "modified", "additions": 1, "deletions": 1,
         "changes": 2, "patch": "@@ -1 +1 @@\n-a\n+b"},
    ]  # fmt: skip
    server.start()
    yield server
    server.stop()


@pytest.fixture
def reviewer_worker(agent_worker: Callable[..., Worker], github: FakeGitHub) -> Worker:
    """A worker on a queue of this test's own, holding a GitHub token, as a deployment would."""
    env = {"SWITCHYARD_GITHUB_API_URL": github.url, "SWITCHYARD_GITHUB_TOKEN": GITHUB_TOKEN}
    return agent_worker("scoping", QUEUE, env=env)


def test_a_pull_request_published_through_the_api_reaches_no_github_agent(
    routes: None,
    api_token: str,
    live_server: Any,
    github: FakeGitHub,
    model: FakeMessagesAPI,
    reviewer_worker: Worker,
) -> None:
    # given a GitHub source, and the reviewer's routes on the worker's queue
    Source.objects.create(slug="gh", kind="github", secrets=[WEBHOOK_SECRET])
    assert Route.objects.filter(handler="github.pr_review").update(queue=QUEUE) == 2
    model.tool_use("list_changed_files", {}, id="toolu_1")
    model.text(f"```json\n{json.dumps(REVIEW)}\n```")
    body = FIXTURE.read_bytes()

    # when an attacker with an ordinary API token publishes a pull request naming another
    # repository, then GitHub sends its own signed webhook for the real one
    forged = copy.deepcopy(json.loads(body))
    forged["repository"]["full_name"] = "victim/private-repo"
    forged["pull_request"]["number"] = 7
    status, answer = post(
        f"{live_server.url}/api/events",
        json.dumps({"type": "github.pull_request.opened", "payload": forged}).encode(),
        {"Authorization": f"Bearer {api_token}", "Content-Type": "application/json"},
    )
    assert status == 202, answer
    forged_id = answer["id"]
    status, answer = post(
        f"{live_server.url}/hooks/gh",
        body,
        {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign(WEBHOOK_SECRET, body),
            "X-GitHub-Event": "pull_request",
            "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        },
    )
    assert status == 202, answer
    genuine = Delivery.objects.get(event_id=answer["id"], handler="github.pr_review")
    wait_until(
        lambda: Delivery.objects.get(pk=genuine.pk).status == DeliveryStatus.SUCCEEDED,
        timeout=30,
        what="the genuine review to succeed",
    )

    # then the forged event is stored, routed nowhere, and nothing touched the other repository
    event = Event.objects.get(pk=forged_id)
    assert (event.status, event.deliveries.count()) == (EventStatus.IGNORED, 0)
    touched = {"/".join(r.path.split("/")[2:4]) for r in github.requests}
    assert touched == {"Codertocat/Hello-World"}
    assert list(github.comments) == [PR]
    assert len(model.requests) == 2  # the genuine run's two turns, and no other


@pytest.mark.parametrize(
    ("event_type", "handler"),
    [
        ("github.pull_request.opened", "github.pr_review"),
        ("stripe.invoice.payment_failed", "payments.recovery"),
        ("schedule.daily-briefing", "briefing.daily"),
        ("schedule.metrics-check", "metrics-check"),
        ("approval.approved", "switchyard.approved_action"),
    ],
)
def test_an_api_token_cannot_trigger_a_provider_or_system_handler(
    routes: None, api_token: str, live_server: Any, event_type: str, handler: str
) -> None:
    status, answer = post(
        f"{live_server.url}/api/events",
        json.dumps({"type": event_type, "payload": {}}).encode(),
        {"Authorization": f"Bearer {api_token}", "Content-Type": "application/json"},
    )

    assert status == 202, answer
    assert not Delivery.objects.filter(event_id=answer["id"], handler=handler).exists()
    assert Route.objects.filter(handler=handler).exists()  # it has routes: they refused it
