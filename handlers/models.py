"""What agents keep: the trace of each run (Step), daily budgets, approvals waiting for a
person, operators' model overrides, and the keys of write tools' side effects (ToolEffect).

Steps, approvals and usage hang off the pipeline's attempts, deliveries and events; the
pipeline itself knows nothing of these tables (handlers.providers wires them into a run).
"""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone


class StepKind(models.TextChoices):
    LLM = "llm", "LLM call"
    TOOL = "tool", "tool call"


class Step(models.Model):
    """One traced step of an agent's attempt: a model call or a tool call.

    Written as each step completes (handlers.traces.recorder), outside the transaction that
    records the attempt's result, so a run that dies midway still shows what it did and spent.
    """

    attempt = models.ForeignKey("events.Attempt", on_delete=models.CASCADE, related_name="step_set")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=8, choices=StepKind.choices)
    # The model for an LLM call ("offline" for the offline provider), the tool for a tool call.
    name = models.CharField(max_length=200)
    tool_kind = models.CharField(max_length=16, blank=True, default="")
    # A tool call's input; for an LLM call only a summary of the request, never the prompt.
    input = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cache_creation_tokens = models.PositiveIntegerField(default=0)
    cache_read_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    stop_reason = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["attempt", "number"]
        constraints = [
            models.UniqueConstraint(fields=["attempt", "number"], name="step_attempt_number"),
        ]
        indexes = [
            # The agent usage page: LLM calls of the last days, summed per handler and day.
            models.Index(fields=["created_at"], name="step_llm_created", condition=Q(kind="llm")),
        ]

    def __str__(self) -> str:
        return f"step {self.number} ({self.kind} {self.name}) of attempt {self.attempt_id}"


class AgentUsage(Step):
    """Per agent per day totals, as their own read-only admin page."""

    class Meta:
        proxy = True
        verbose_name = "agent usage"
        verbose_name_plural = "agent usage"


class AgentBudget(models.Model):
    """A daily budget for one agent handler: tokens (input + output) and/or cost of its LLM calls
    since local midnight (``TIME_ZONE``). Past it, its deliveries end with "budget exceeded"
    (handlers.budgets). No row, or a disabled one, means no daily limit."""

    handler = models.CharField(max_length=100, unique=True, help_text="The handler's name.")
    daily_token_limit = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="Input + output tokens per day; empty for no token limit.",
    )
    daily_cost_limit_usd = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
        help_text="USD per day; empty for no cost limit.",
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["handler"]
        verbose_name = "agent budget"

    def __str__(self) -> str:
        return self.handler


class ApprovalStatus(models.TextChoices):
    PENDING = "pending", "pending"
    APPROVED = "approved", "approved (running)"
    EXECUTED = "executed", "executed"
    REJECTED = "rejected", "rejected"
    FAILED = "failed", "failed"


class Approval(models.Model):
    """A write an agent asked for that waits for a person (a tool marked requires_approval).

    Created by the run instead of acting (handlers.approvals.requester). Approving it publishes an
    ``approval.approved`` event whose delivery performs the write once, with the idempotency key
    the run derived; rejecting it ends the matter and nothing runs.
    """

    delivery = models.ForeignKey(
        "events.Delivery", on_delete=models.CASCADE, related_name="approvals"
    )
    agent = models.CharField(max_length=100, help_text="The agent that asked.")
    tool = models.CharField(max_length=64)
    # The model's input for the tool, checked against its schema and made safe to store.
    input = models.JSONField()
    # Derived from the delivery, the tool and its input: the same request made again by a
    # retried run finds this row instead of creating another.
    idempotency_key = models.CharField(max_length=200, unique=True)
    status = models.CharField(
        max_length=16, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING
    )
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.CharField(max_length=150, blank=True, default="")
    reason = models.TextField(blank=True, default="", help_text="Why it was rejected or failed.")
    # The approval.approved event whose delivery performs the write.
    follow_up = models.ForeignKey(
        "events.Event", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    executed_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["created_at"],
                name="approval_pending",
                condition=Q(status="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"approval {self.pk}: {self.agent} wants {self.tool}"


class AgentConfig(models.Model):
    """An operator's override for one agent handler: the model it calls. Read before each run
    (handlers.overrides); no row, or an empty model, means the agent's own choice."""

    handler = models.CharField(max_length=100, unique=True, help_text="The handler's name.")
    model = models.CharField(
        max_length=100,
        blank=True,
        default="",
        help_text="Model for this agent's calls; empty for the agent's default.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["handler"]
        verbose_name = "agent model"

    def __str__(self) -> str:
        return self.handler


class ToolEffect(models.Model):
    """One side effect done under an idempotency key (handlers.effects.once)."""

    key = models.CharField(max_length=200, unique=True)
    result = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "tool effect"

    def __str__(self) -> str:
        return self.key
