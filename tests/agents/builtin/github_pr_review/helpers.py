"""The signed webhook, the pipeline run and the scripted review the GitHub PR reviewer's tests
share."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.test import Client

import handlers.agents.github_pr_review as reviewer
from events.delivery import execute
from events.models import Delivery
from events.webhooks.github import sign

from ...conftest import FakeMessagesAPI

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


def delivered(response: Any) -> Delivery:
    assert response.status_code == 202, response.content
    return Delivery.objects.get(event_id=response.json()["id"], handler="github.pr_review")
