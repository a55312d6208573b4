"""Approvals: writes an agent asked for that wait for a person.

A tool marked ``requires_approval`` does not act during the run. The run calls
``ctx.request_approval`` (``requester`` below), which files an Approval keyed by the write's
idempotency key; the model is told the action is pending and the run goes on to its answer.

Approving (``approve``) publishes an ``approval.approved`` event in the same transaction; its
delivery (the ``switchyard.approved_action`` handler here) performs the write once, with the
key the run derived, and marks the approval executed. So the write gets the pipeline's
retries, dead letters and trace like any other work. Rejecting (``reject``) ends the matter:
nothing runs, and a later approval of the same row is refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.utils import timezone

from events.models import Delivery
from events.publish import PublishError, check_payload, internal_source, publish
from events.redaction import Sanitiser, secret_values

from .context import ApprovalRequest, ApprovalTicket, HandlerContext
from .errors import PermanentError
from .llm import get_agent
from .llm.tools import ToolInputError
from .models import Approval, ApprovalStatus
from .registry import handler

APPROVED_TYPE = "approval.approved"
EXECUTOR = "switchyard.approved_action"
MAX_REASON_CHARS = 2000
# Approvals the executor carries out: approved, or approved and failed before (an operator
# requeued the dead-lettered follow-up after fixing the cause). Never pending or rejected.
CARRY_OUT = (ApprovalStatus.APPROVED, ApprovalStatus.FAILED)
# Approvals still waiting for a decision or being carried out: retention keeps their events.
UNDECIDED = (ApprovalStatus.PENDING, ApprovalStatus.APPROVED)


def requester(delivery: Delivery) -> Callable[[ApprovalRequest], ApprovalTicket]:
    """``ctx.request_approval`` for one delivery."""

    def request(req: ApprovalRequest) -> ApprovalTicket:
        payload = dict(req.input)
        try:
            check_payload(payload)
        except PublishError as exc:
            problem = f"approval input for {req.tool!r} cannot be stored: {exc}"
            raise PermanentError(problem) from None
        approval, _ = Approval.objects.get_or_create(
            idempotency_key=req.idempotency_key,
            defaults={
                "delivery": delivery,
                "agent": req.agent,
                "tool": req.tool,
                "input": payload,
            },
        )
        return ticket(approval)

    return request


def ticket(approval: Approval) -> ApprovalTicket:
    return ApprovalTicket(
        id=approval.pk, status=approval.status, result=approval.result, reason=approval.reason
    )


def approve(approval_id: int, *, by: str) -> bool:
    """Approve a pending approval and publish the event that carries it out. False if it was
    not pending (decided already, perhaps by someone else a moment ago)."""
    now = timezone.now()
    with transaction.atomic():
        won = Approval.objects.filter(pk=approval_id, status=ApprovalStatus.PENDING).update(
            status=ApprovalStatus.APPROVED, decided_at=now, decided_by=by
        )
        if not won:
            return False
        approval = Approval.objects.select_related("delivery").get(pk=approval_id)
        result = publish(
            source=internal_source(),
            type=APPROVED_TYPE,
            external_id=f"approval:{approval.pk}",
            payload={
                "approval": approval.pk,
                "agent": approval.agent,
                "tool": approval.tool,
                "handler": approval.delivery.handler,
                "event": str(approval.delivery.event_id),
                "approved_by": by,
            },
        )
        Approval.objects.filter(pk=approval.pk).update(follow_up=result.event)
    return True


def reject(approval_id: int, *, by: str, reason: str = "") -> bool:
    """Reject a pending approval: nothing will run. False if it was not pending."""
    reason = (reason.strip() or f"rejected by {by}")[:MAX_REASON_CHARS]
    return bool(
        Approval.objects.filter(pk=approval_id, status=ApprovalStatus.PENDING).update(
            status=ApprovalStatus.REJECTED,
            decided_at=timezone.now(),
            decided_by=by,
            reason=reason,
        )
    )


@handler(
    EXECUTOR,
    on=[APPROVED_TYPE],
    sources=["internal"],  # published by approve() only
    max_attempts=5,
    time_limit=120,
    backoff_base=5.0,
)
def run_approved_action(ctx: HandlerContext) -> dict[str, Any]:
    """Carry out an approved write, once, with the key the agent's run derived."""
    payload = ctx.event.payload if isinstance(ctx.event.payload, dict) else {}
    approval_id = payload.get("approval")
    approval = (
        Approval.objects.filter(pk=approval_id).first() if isinstance(approval_id, int) else None
    )
    if approval is None:
        raise PermanentError(f"no approval {payload.get('approval')!r}")
    if approval.status == ApprovalStatus.EXECUTED:
        return {"approval": approval.pk, "tool": approval.tool, "already_executed": True}
    if approval.status not in CARRY_OUT:
        # A forged or replayed event cannot run a write nobody approved.
        raise PermanentError(f"approval {approval.pk} is {approval.status}, not approved")
    try:
        agent = get_agent(approval.agent)
        chosen = agent.tools.get(approval.tool) if agent is not None else None
        if chosen is None:
            raise PermanentError(
                f"agent {approval.agent!r} has no tool {approval.tool!r} in this deployment"
            )
        try:
            value = chosen.invoke_with_key(approval.input, idempotency_key=approval.idempotency_key)
        except ToolInputError as exc:
            problem = f"approved input no longer fits {approval.tool!r}: {exc}"
            raise PermanentError(problem) from None
    except Exception as exc:
        # When it will not be retried (a PermanentError, or this delivery's last attempt) the
        # approval says so too; other errors retry the delivery and it stays approved.
        if isinstance(exc, PermanentError) or ctx.last_attempt:
            reason = str(exc) or type(exc).__name__
            Approval.objects.filter(pk=approval.pk, status__in=CARRY_OUT).update(
                status=ApprovalStatus.FAILED, reason=reason[:MAX_REASON_CHARS]
            )
        raise
    # Stored and shown (the approval, this delivery's outcome) with known secrets redacted.
    result = Sanitiser(secret_values()).json(json.loads(json.dumps(value, default=str)))
    Approval.objects.filter(pk=approval.pk, status__in=CARRY_OUT).update(
        status=ApprovalStatus.EXECUTED, executed_at=timezone.now(), result=result
    )
    ctx.logger.info("approval %s: %s carried out", approval.pk, approval.tool)
    return {"approval": approval.pk, "tool": approval.tool, "result": result}
