"""Daily briefing: a schedule's ``schedule.daily-briefing`` event -> what happened in the
pipeline over the last 24 hours, as a headline, highlights and a list of what needs attention.

The agent reads a bounded summary (``pipeline_summary``: events by type and status, dead
letters, pending approvals, agent spend) and writes the briefing, which is the delivery's
outcome. With ``SWITCHYARD_BRIEFING_RECIPIENTS`` set the handler also emails it, once per
delivery. See docs/agents.md, "Daily briefing".
"""

from __future__ import annotations

import json
import smtplib
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils import timezone

from handlers.context import HandlerContext
from handlers.effects import once
from handlers.errors import PermanentError, TransientError
from handlers.llm import Agent, OfflinePlan
from handlers.registry import handler

from . import briefing, conf, prompt, summary
from .tools import pipeline_summary

HANDLER = "briefing.daily"
DEFAULT_HOURS = 24


def window_hours(ctx: HandlerContext) -> int:
    """``hours`` from the schedule's arguments (the payload), 24 when absent."""
    payload = ctx.event.payload if isinstance(ctx.event.payload, dict) else {}
    hours = payload.get("hours", DEFAULT_HOURS)
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= summary.MAX_HOURS:
        raise PermanentError(
            f"the schedule's 'hours' must be a whole number from 1 to {summary.MAX_HOURS}, "
            f"not {hours!r}"
        )
    return hours


def offline_plan(ctx: HandlerContext) -> OfflinePlan:
    """The tool call a model would make, and a briefing written from the same numbers."""
    hours = window_hours(ctx)
    written = briefing.from_numbers(summary.pipeline_summary(hours))
    return OfflinePlan(text=json.dumps(written), calls=[("pipeline_summary", {"hours": hours})])


agent = Agent(
    name=HANDLER,
    system=prompt.SYSTEM,
    tools=[pipeline_summary],
    max_tokens=1500,
    max_turns=3,
    offline=offline_plan,
)


@handler(
    HANDLER,
    on=["schedule.daily-briefing"],
    sources=["schedule"],
    max_attempts=3,
    time_limit=180,
    resources=["anthropic"],
)
def daily_briefing(ctx: HandlerContext) -> dict[str, Any]:
    """Summarise the pipeline's last 24 hours for the people on call."""
    hours = window_hours(ctx)
    result = agent.run(ctx, prompt.instructions(hours))
    written = briefing.from_answer(result.text, ctx.redact)
    window = summary.window(hours)
    emailed = email(ctx, written, window, result.provider)
    return {"briefing": written, "window": window, "emailed": emailed, **result.as_outcome()}


def email(
    ctx: HandlerContext, written: dict[str, Any], window: dict[str, Any], provider: str
) -> dict[str, Any] | None:
    """Email the briefing to SWITCHYARD_BRIEFING_RECIPIENTS, once per delivery: a re-run finds
    the stored result and sends nothing. None when there are no recipients."""
    recipients = list(conf.BRIEFING_RECIPIENTS.get())
    if not recipients:
        return None

    def send() -> dict[str, Any]:
        message = EmailMessage(
            subject=briefing.email_subject(written),
            body=briefing.email_body(written, window, provider),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=recipients,
        )
        try:
            message.send(fail_silently=False)
        except (smtplib.SMTPException, OSError) as exc:
            raise TransientError(f"emailing the briefing failed: {exc}") from exc
        return {"to": recipients, "subject": message.subject, "sent_at": timezone.now().isoformat()}

    result: dict[str, Any] = once(f"{HANDLER}:email:{ctx.idempotency_key}", send)
    return result
