"""The reviewer's read tools: the pull request's changed files and one file's diff.

Neither takes a repository or a PR number. The pull request comes from the event, set for the
length of one run by ``reviewing(pr)``: whatever the PR's text asks for, the model cannot aim
the token at another repository. Without a token they fail with a clear message, which goes
back to the model as an error result, and it reviews from the payload alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from handlers.llm import tool

from . import api

MAX_FILE_PAGES = 3  # 300 files: more than a reviewable pull request has
MAX_PATCH_CHARS = 8000


@dataclass
class _Run:
    pr: api.PullRequestRef
    files: list[dict[str, Any]] | None = field(default=None)


_current: ContextVar[_Run | None] = ContextVar("github_pr_review_run", default=None)


@contextmanager
def reviewing(pr: api.PullRequestRef) -> Iterator[None]:
    """Point the tools at ``pr`` for the duration of one run."""
    token = _current.set(_Run(pr))
    try:
        yield
    finally:
        _current.reset(token)


def _run() -> _Run:
    run = _current.get()
    if run is None:
        raise RuntimeError("the GitHub tools are only available while a pull request is reviewed")
    return run


def _files() -> list[dict[str, Any]]:
    run = _run()
    if run.files is None:  # one listing per run, shared by both tools
        items = api.pages(run.pr.path(f"pulls/{run.pr.number}/files"), max_pages=MAX_FILE_PAGES)
        run.files = [item for item in items if isinstance(item, dict)]
    return run.files


@tool(kind="read")
def list_changed_files() -> dict[str, Any]:
    """List the files this pull request changes, with line counts (no diff text)."""
    files = [
        {
            "filename": item.get("filename"),
            "status": item.get("status"),
            "additions": item.get("additions"),
            "deletions": item.get("deletions"),
        }
        for item in _files()
    ]
    return {"files": files, "count": len(files), "complete": len(files) < 100 * MAX_FILE_PAGES}


@tool(kind="read")
def get_diff(filename: str) -> str:
    """The unified diff of one file this pull request changes.

    Args:
        filename: A path exactly as list_changed_files gives it.
    """
    for item in _files():
        if item.get("filename") == filename:
            patch = item.get("patch")
            if not isinstance(patch, str):
                return f"{filename}: no text diff (a binary file, or too large for GitHub's API)"
            if len(patch) > MAX_PATCH_CHARS:
                rest = len(patch) - MAX_PATCH_CHARS
                return f"{patch[:MAX_PATCH_CHARS]}\n[cut: {rest} more characters]"
            return patch
    raise LookupError(f"{filename!r} is not among the files this pull request changes")
