"""GitHub PR reviewer: a risk assessment and review checklist for each opened or updated PR.

With ``SWITCHYARD_GITHUB_TOKEN`` set it reads the changed files and diffs through the GitHub
API and the handler posts the review as a PR comment, once per pull request head commit
(comment.py), however many events or deliveries describe that commit;
without one it reviews from the webhook payload and the comment is only in the outcome.
See docs/agents.md ("GitHub PR reviewer").
"""

from __future__ import annotations

import json
from typing import Any

from handlers.context import HandlerContext
from handlers.errors import PermanentError
from handlers.llm import Agent, OfflinePlan
from handlers.registry import handler

from . import api, comment, prompt, rules, tools

NAME = "github.pr_review"


def offline_plan(ctx: HandlerContext) -> OfflinePlan:
    """The payload-only review as the JSON answer the model would give; no tool calls (the
    rules cannot use what the tools return)."""
    payload = ctx.event.payload if isinstance(ctx.event.payload, dict) else {}
    return OfflinePlan(text=json.dumps(rules.review(payload, ctx.event.type)))


def pull_request_view(payload: Any) -> dict[str, Any]:
    """What the model needs of the webhook payload (about 1 KB of its ~25 KB: the rest is
    URLs and ids); the tools fetch files and diffs when a token is set."""
    if not isinstance(payload, dict):
        return {}
    pull = rules.as_dict(payload.get("pull_request"))
    repository = rules.as_dict(payload.get("repository"))

    def ref(side: str) -> Any:
        return rules.as_dict(pull.get(side)).get("ref")

    user = rules.as_dict(pull.get("user"))
    labels = pull.get("labels")
    labels = labels if isinstance(labels, list) else []
    return {
        "action": payload.get("action"),
        "repository": repository.get("full_name"),
        "pull_request": {
            key: pull.get(key)
            for key in (
                "number",
                "title",
                "body",
                "draft",
                "additions",
                "deletions",
                "changed_files",
                "commits",
            )
        }
        | {
            "author": user.get("login"),
            "base": ref("base"),
            "head": ref("head"),
            "labels": [label.get("name") for label in labels if isinstance(label, dict)],
        },
    }


reviewer = Agent(
    name=NAME,
    system=prompt.SYSTEM,
    tools=[tools.list_changed_files, tools.get_diff],
    max_turns=8,
    max_tokens=1500,
    offline=offline_plan,
    payload_view=pull_request_view,
)


def pull_request_ref(payload: Any) -> api.PullRequestRef:
    """The event's pull request and head commit; PermanentError if the payload does not name
    them. The event comes from a github source (``sources=["github"]``), so its signature was
    checked: these are GitHub's words, not a publisher's."""
    repository = payload.get("repository") if isinstance(payload, dict) else None
    pull = payload.get("pull_request") if isinstance(payload, dict) else None
    full_name = repository.get("full_name") if isinstance(repository, dict) else None
    number = pull.get("number") if isinstance(pull, dict) else None
    head = pull.get("head") if isinstance(pull, dict) else None
    sha = head.get("sha") if isinstance(head, dict) else None
    owner, _, repo = str(full_name or "").partition("/")
    if (
        not api.NAME_RE.fullmatch(owner)
        or not api.NAME_RE.fullmatch(repo)
        or not isinstance(number, int)
        or isinstance(number, bool)
        or number < 1
        or not isinstance(sha, str)
        or not api.SHA_RE.fullmatch(sha)
    ):
        raise PermanentError(
            "the event names no pull request (repository.full_name 'owner/name', "
            "pull_request.number and pull_request.head.sha)"
        )
    return api.PullRequestRef(owner=owner, repo=repo, number=number, head_sha=sha)


@handler(
    NAME,
    on=["github.pull_request.opened", "github.pull_request.synchronize"],
    sources=["github"],
    max_attempts=4,
    time_limit=300,
    resources=["anthropic", "github"],
)
def review_pull_request(ctx: HandlerContext) -> dict[str, Any]:
    """Assess a pull request's risk and post a review checklist as a PR comment."""
    pr = pull_request_ref(ctx.event.payload)
    with tools.reviewing(pr):
        result = reviewer.run(ctx, prompt.INSTRUCTIONS)
    review = prompt.parse_answer(result.text)
    body = comment.render(review, pr=pr, provider=result.provider, model=result.model)
    if result.provider == "offline":
        # Keyword rules are a demo of the flow, not a review to put in front of people.
        posted = {
            "posted": False,
            "reason": "the offline provider made this review; it is recorded here only",
        }
    elif api.configured():
        posted = comment.post(ctx, pr, body)
    else:
        posted = {
            "posted": False,
            "reason": "SWITCHYARD_GITHUB_TOKEN is not set; the comment is recorded here only",
        }
    return {
        **result.as_outcome(),
        **review,
        "pull_request": {"repository": pr.full_name, "number": pr.number},
        "comment": {**posted, "body": body},
    }
