"""The review as a PR comment, posted once per pull request head commit.

The handler posts, never the model: the model has no write tool, so nothing in a pull
request's text can make it post elsewhere or twice. The key is what the comment is about, the
pull request and the commit its head points at (``owner/repo#number@sha``, from the signed
webhook), not the event or the delivery: a second event for the same commit (an
``opened`` and a ``synchronize``, two sources for one repository, a redelivery under a new id)
posts nothing more. A new commit is a new review. Posting is idempotent twice over:

- ``handlers.effects.once`` stores the result under that key, so a re-run after a successful
  post makes no request at all;
- the comment carries a hidden marker ``<!-- switchyard:github.pr_review:<key> -->``, and the
  PR's existing comments are searched for it before posting. That covers the window ``once``
  cannot: GitHub created the comment but the answer was lost (a 502, a timeout, a worker
  killed before the commit), so the retry finds the comment instead of posting another.
"""

from __future__ import annotations

from typing import Any

from handlers.context import HandlerContext
from handlers.effects import done, once
from handlers.errors import PermanentError, TransientError

from . import api

MAX_COMMENT_PAGES = 10  # 1,000 comments: the marker is searched for in at most these


def marker(pr: api.PullRequestRef) -> str:
    return f"<!-- switchyard:github.pr_review:{pr.head} -->"


_MARKDOWN_LINK_CHARS = str.maketrans({c: f"\\{c}" for c in "[]()!"})


def _plain(text: str) -> str:
    """Model text made inert in GitHub markdown: no HTML (so no fake or closed markers), no
    @mentions that would notify people, no markdown links or images (a PR body cannot get
    a disguised link or a tracking image posted under the bot's name; a bare URL stays
    visible as what it is)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("\\", "\\\\").translate(_MARKDOWN_LINK_CHARS)
    return text.replace("@", "@\u200b")


def render(review: dict[str, Any], *, pr: api.PullRequestRef, provider: str, model: str) -> str:
    """The comment's markdown, starting with the marker."""
    lines = [
        marker(pr),
        f"### Automated review: risk **{review['risk']}**",
        "",
        _plain(review["summary"]),
        "",
        "**Why**",
        *(f"- {_plain(reason)}" for reason in review["reasons"]),
        "",
        "**Checklist**",
        *(f"- [ ] {_plain(item)}" for item in review["checklist"]),
        "",
    ]
    if provider == "offline":
        by = "keyword rules (offline provider; no model was called)"
    else:
        by = f"{model} via Switchyard"
    lines.append(f"<sub>Written by {by}. It does not approve or block this pull request.</sub>")
    return "\n".join(lines)


def post(ctx: HandlerContext, pr: api.PullRequestRef, body: str) -> dict[str, Any]:
    """Post ``body`` on the pull request once for its head commit.

    Returns ``{"posted": True, "id", "url", "new"}``; ``new`` is false when an earlier run
    (of this delivery or another about the same commit) posted it. Raises TransientError or
    PermanentError on a GitHub failure.
    """
    key = f"github.pr_review.comment:{pr.head}"
    where = f"{pr.full_name}#{pr.number}"

    def act() -> dict[str, Any]:
        existing = _find(pr, marker(pr))
        if existing is not None:
            ctx.logger.info("review comment %s is already on %s", existing["id"], where)
            return {"posted": True, **existing}
        created = api.call("POST", pr.path(f"issues/{pr.number}/comments"), body={"body": body})
        if not isinstance(created, dict) or "id" not in created:
            raise api.GitHubError("GitHub's answer to the new comment has no id", status=502)
        ctx.logger.info("posted review comment %s on %s", created["id"], where)
        return {
            "posted": True,
            "id": created["id"],
            "url": created.get("html_url", ""),
            "new": True,
        }

    earlier = done(key)
    try:
        result: dict[str, Any] = once(key, act)
    except api.GitHubError as exc:
        if exc.transient:
            raise TransientError(str(exc), retry_after=exc.retry_after) from None
        raise PermanentError(str(exc)) from None
    # Found by its marker, or stored by an earlier run of this delivery: not new now.
    return {**result, "new": bool(result.get("new")) and not earlier}


def _find(pr: api.PullRequestRef, mark: str) -> dict[str, Any] | None:
    comments = api.pages(pr.path(f"issues/{pr.number}/comments"), max_pages=MAX_COMMENT_PAGES)
    for comment in comments:
        if isinstance(comment, dict) and mark in str(comment.get("body") or ""):
            return {"id": comment.get("id"), "url": comment.get("html_url", "")}
    return None
