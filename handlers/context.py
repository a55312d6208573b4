"""What a handler receives: the event's data, its attempt, an idempotency key, emit(), and its
memory for the event's partition key (``ctx.state``)."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class EventData:
    """A read-only view of the event being handled."""

    id: str
    type: str
    payload: Any
    source: str
    external_id: str
    partition_key: str
    schema_version: int
    received_at: str


@dataclass(frozen=True)
class Emitted:
    """A follow-up event a handler asked for; published only if the handler succeeds."""

    type: str
    payload: Mapping[str, Any]
    partition_key: str | None = None


@dataclass(frozen=True)
class ApprovalRequest:
    """An agent's write that must wait for a person (a tool marked ``requires_approval``)."""

    agent: str
    tool: str
    input: Mapping[str, Any]
    # The key the write will run with once approved; the same request made again by a
    # retried run carries the same key and finds the same approval.
    idempotency_key: str


@dataclass(frozen=True)
class ApprovalTicket:
    """Where an approval request stands: pending, approved, executed, rejected or failed."""

    id: int
    status: str
    result: Any = None
    reason: str = ""


@dataclass(frozen=True)
class StateSnapshot:
    """A handler's memory for one partition key, as a run read it."""

    data: dict[str, Any]
    version: int  # 0: nothing stored yet


@dataclass
class HandlerContext:
    event: EventData
    attempt: int
    handler: str
    # Stable for one (event, handler) across every attempt and redelivery: key side effects
    # on it and they happen once, however often the handler runs.
    idempotency_key: str
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger]
    emitted: list[Emitted] = field(default_factory=list)
    # Called with one dict per traced step (an LLM call, a tool call) as it completes; None
    # when nobody stores them.
    record_step: Callable[[dict[str, Any]], None] | None = None
    # Asked before each LLM call: a reason ("budget exceeded: ...") when the handler is over
    # its budget, else None. None when nobody keeps budgets.
    budget_check: Callable[[], str | None] | None = None
    # Files an approval request and says where it stands (an existing one for the same key is
    # returned, not duplicated). None when nobody keeps approvals: such writes are refused.
    request_approval: Callable[[ApprovalRequest], ApprovalTicket] | None = None
    # Replaces known secret values (secret-looking environment variables, SECRET_KEY, the
    # source's webhook secrets) in text bound for the model: tool results and the payload.
    redact: Callable[[str], str] | None = None
    # The model an operator set for this handler in the admin, asked once per run; it wins
    # over the agent's own ``model=`` and the default. None when nobody keeps overrides.
    model_override: Callable[[], str | None] | None = None
    # When this attempt's time limit runs out, on the ``time.monotonic()`` clock; None when
    # there is none. An agent makes no model or tool call past it, and bounds each model
    # request's timeout by the time left (the threads pool cannot stop a running thread).
    deadline: float | None = None
    # Whether this is the last attempt the route allows before the delivery is dead-lettered:
    # a handler that fails now will not run again unless an operator requeues it.
    last_attempt: bool = False
    # Reads this handler's memory for the event's partition key (``ctx.state``); None when
    # nobody keeps state.
    load_state: Callable[[], StateSnapshot] | None = None
    # What ``ctx.state`` was read as, once the handler has touched it; None until then.
    state_read: StateSnapshot | None = field(default=None, init=False, repr=False)
    _state: dict[str, Any] | None = field(default=None, init=False, repr=False)

    @property
    def state(self) -> dict[str, Any]:
        """This handler's memory for the event's partition key: a JSON object it may change.

        Read on first use (with its version), so a handler that never touches it costs no
        query. What the handler leaves is written with its success, in the same transaction,
        only if nobody wrote it since it was read; otherwise the handler runs again on the
        fresh state (docs/operations.md, "Memory across events").
        """
        if self._state is None:
            if self.load_state is None:
                raise RuntimeError("ctx.state is not available: nothing keeps state for this run")
            read = self.load_state()
            self.state_read = read
            self._state = copy.deepcopy(read.data)
        return self._state

    @state.setter
    def state(self, value: dict[str, Any]) -> None:
        if not isinstance(value, dict):
            raise ValueError("ctx.state must be a dict (a JSON object)")
        self.state  # noqa: B018 - read first: the write is checked against the version read
        self._state = value

    def state_left(self) -> dict[str, Any] | None:
        """What the handler left in ``ctx.state``; None if it never touched it."""
        return self._state

    def start_over(self) -> None:
        """Forget what a run left in this context (its emitted events, the state it read and
        changed) before the handler runs again with it."""
        self.emitted.clear()
        self.state_read = None
        self._state = None

    def emit(self, type: str, payload: Mapping[str, Any], partition_key: str | None = None) -> None:
        """Ask for a follow-up event. It is stored in the same transaction that records this
        handler's success, and enqueued after that commits (an outbox)."""
        if not isinstance(type, str) or not type:
            raise ValueError("emit() needs a non-empty event type")
        if not isinstance(payload, Mapping):
            raise ValueError("emit() needs a JSON object as payload")
        self.emitted.append(Emitted(type=type, payload=dict(payload), partition_key=partition_key))
