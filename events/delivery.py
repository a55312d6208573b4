"""Running one delivery: claim it, call the handler outside any transaction, record the result.

The status changes themselves (claim, succeed, fail) are events.transitions'; the lease of the
running attempt is renewed by events.leases while the handler runs.
"""

from __future__ import annotations

import json
import logging
import time
import traceback as tb_module
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone

from agents_project.db import release_connections
from agents_project.logs import bind
from handlers import registry
from handlers.context import Emitted, EventData, HandlerContext
from handlers.errors import PermanentError, TransientError

from . import breakers
from .extensions import Run, provide
from .fanout import FanOutLimit, check_emitted
from .leases import keeper
from .metrics import ATTEMPTS, HANDLER_SECONDS
from .models import Delivery
from .publish import PublishError, check_fields, check_payload
from .redaction import Sanitiser, sanitiser_for
from .state import MAX_RUNS, StateConflict, loader, pending
from .transitions import Claim, Outcome, claim, fail, gate, route_settings, storable, succeed

__all__ = ["build_context", "execute", "storable"]

log = logging.getLogger("switchyard.pipeline")
handler_log = logging.getLogger("switchyard.handlers")


def build_context(
    delivery: Delivery, number: int, attempt_id: int | None = None, clean: Sanitiser | None = None
) -> HandlerContext:
    """The context a handler gets for attempt ``number``; other apps add to it through their
    context providers (events.extensions), such as the agents' trace, budget and approvals."""
    event = delivery.event
    clean = clean or sanitiser_for(delivery)
    ctx = HandlerContext(
        event=EventData(
            id=str(event.id),
            type=event.type,
            payload=event.payload,
            source=event.source.slug,
            external_id=event.external_id,
            partition_key=event.partition_key,
            schema_version=event.schema_version,
            received_at=event.received_at.isoformat(),
        ),
        attempt=number,
        handler=delivery.handler,
        idempotency_key=f"{event.id}:{delivery.handler}",
        logger=logging.LoggerAdapter(
            handler_log, {"event_id": str(event.id), "handler": delivery.handler}
        ),
        # Secret values never reach the model, even if a tool returns one.
        redact=clean.text,
        last_attempt=delivery.attempts >= route_settings(delivery).max_attempts,
        load_state=loader(delivery.handler, event.partition_key),
    )
    provide(Run(delivery, number, attempt_id, clean), ctx)
    return ctx


def execute(delivery_id: int, *, worker: str = "", queue: str = "") -> Outcome:
    """One task run: the limits, the claim, the handler outside any transaction, its result.

    The limits are asked before the claim: a delivery that may not start yet is deferred
    (events.transitions.deferral) without an attempt, and the claim stays the one guard
    against running a delivery twice."""
    held = gate(delivery_id)
    if held is not None:
        return held
    claimed = claim(delivery_id, worker=worker, queue=queue)
    if isinstance(claimed, Outcome):
        return claimed
    started = timezone.now()
    # The lease is renewed while the handler runs, and the attempt fenced if it overruns its
    # time limit under a pool that cannot stop it (events.leases).
    begun = time.monotonic()
    deadline = begun + claimed.route.time_limit
    keeper.hold(claimed, deadline, started)
    handler = claimed.delivery.handler
    # Every line logged for this attempt, by any logger, carries its ids (LOG_FORMAT=json).
    ids = {
        "event_id": str(claimed.delivery.event_id),
        "delivery_id": claimed.delivery.id,
        "attempt": claimed.number,
        "handler": handler,
    }
    try:
        with bind(**ids):
            outcome = _run(claimed, deadline, started, worker)
    finally:
        keeper.release(claimed.delivery.id)
    ATTEMPTS.labels(handler, outcome.status).inc()
    HANDLER_SECONDS.labels(handler).observe(time.monotonic() - begun)
    return outcome


def _run(claimed: Claim, deadline: float, started: Any, worker: str) -> Outcome:
    delivery = claimed.delivery
    # Known secrets (the environment's, the source's) are replaced in whatever this run stores:
    # steps, the outcome, emitted events, state, the error and its traceback; the API and the
    # admin show only what is stored.
    clean = sanitiser_for(delivery)
    ctx = build_context(delivery, claimed.number, claimed.attempt_id or None, clean)
    ctx.deadline = deadline
    conflict: StateConflict | None = None
    for run in range(1, MAX_RUNS + 1):
        if conflict is not None:
            # Another write to the handler's state came first: nothing of the last run was
            # recorded; run the handler again on the fresh state, in the same attempt.
            log.info(
                "delivery %s (%s) attempt %s: %s; running the handler again (run %s of %s)",
                delivery.id,
                delivery.handler,
                claimed.number,
                conflict,
                run,
                MAX_RUNS,
            )
            ctx.start_over()
        try:
            return _run_once(claimed, ctx, started, worker, clean)
        except StateConflict as lost:
            conflict = lost
        if time.monotonic() >= deadline:
            break
    gave_up = TransientError(
        f"{conflict}: another write came first on each of {run} runs of the handler in this "
        "attempt; it is retried after its backoff"
    )
    return _record(fail, claimed, gave_up, "", started, clean.text)


def _run_once(
    claimed: Claim, ctx: HandlerContext, started: Any, worker: str, clean: Sanitiser
) -> Outcome:
    """One run of the handler and its recorded result; StateConflict (nothing recorded) when
    the state it leaves changed since it read it."""
    delivery = claimed.delivery
    spec = registry.get(delivery.handler)
    # The handler may wait for seconds (an agent on its model): it starts holding no
    # connection, and takes one from the pool only for the writes it makes.
    release_connections()
    try:
        if spec is None:
            # Transient: during a rolling deploy an older worker may not know a new handler.
            raise TransientError(f"handler {delivery.handler!r} is not registered on {worker!r}")
        result = spec.fn(ctx)
        _report_overrun(claimed, ctx)
        outcome = _check_outcome(result)
        _check_emitted(ctx.emitted)
        # Over a fan-out limit: dead-lettered, and none of its follow-ups published.
        check_emitted(delivery, ctx.emitted, claimed.route.max_emits, claimed.route.max_depth)
        state = pending(ctx, clean)
    except GeneratorExit:
        raise
    except BaseException as exc:
        _report_overrun(claimed, ctx)
        # A fan-out limit's traceback would show only this module; its message says it all.
        trace = "" if isinstance(exc, FanOutLimit) else tb_module.format_exc()
        # SystemExit and KeyboardInterrupt too: left to Celery, they would leave the message
        # unacked and the delivery running with no trace of why.
        recorded = _record(fail, claimed, exc, trace, started, clean.text)
        # A transient failure (a timeout, a 429 or 5xx from a resource) counts against the
        # breakers of the route's resources; any other failure says nothing about them.
        if spec is not None and isinstance(exc, TransientError) and recorded.status != "noop":
            _count(claimed, ok=False)
        if isinstance(exc, KeyboardInterrupt):
            raise
        return recorded
    if outcome is not None:
        outcome = clean.json(outcome)
    emitted = [
        replace(item, payload=clean.json(dict(item.payload)), partition_key=_clean_key(item, clean))
        for item in ctx.emitted
    ]
    recorded = _record(succeed, claimed, outcome, emitted, started, state)
    if recorded.status != "noop":
        _count(claimed, ok=True)
    return recorded


def _count(claimed: Claim, *, ok: bool) -> None:
    """Count the attempt's result against the breakers of its route's resources
    (events.breakers); nothing when no breaker is on anywhere."""
    if not breakers.any_breakers():
        return
    delivery = claimed.delivery
    for breaker in breakers.breakers_for(delivery.route_id, delivery.handler):
        breakers.record(breaker, ok)


def _report_overrun(claimed: Claim, ctx: HandlerContext) -> None:
    """Say so when a handler returned after its time limit: under the threads pool nothing
    stops it, its lease may have lapsed and another worker taken the delivery over (then its
    result is dropped by the conditional update that records it)."""
    if ctx.deadline is None:
        return
    over = time.monotonic() - ctx.deadline
    if over > 0:
        log.warning(
            "delivery %s (%s) attempt %s ran %.1f s past its time limit of %s s",
            claimed.delivery.id,
            claimed.delivery.handler,
            claimed.number,
            over,
            claimed.route.time_limit,
        )


def _clean_key(item: Emitted, clean: Sanitiser) -> str | None:
    return clean.text(item.partition_key) if item.partition_key else item.partition_key


# Pauses between tries to record a result when the database drops the connection. The handler
# has already run; giving up here would leave the delivery running until the sweeper took it
# back and ran the handler again.
RECORD_RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 4.0)
_RecordFn = Callable[..., Outcome]


def _record(fn: _RecordFn, *args: Any) -> Outcome:
    for delay in (*RECORD_RETRY_DELAYS, None):
        try:
            return fn(*args)
        except (OperationalError, InterfaceError):
            if delay is None:
                raise
            log.warning(
                "recording a result failed on a database error; trying again", exc_info=True
            )
            connection.close()
            time.sleep(delay)
    raise AssertionError("unreachable")


MAX_OUTCOME_BYTES = 256 * 1024


def _check_outcome(result: Any) -> dict[str, Any] | None:
    if result is None:
        return None
    if not isinstance(result, dict):
        raise PermanentError(f"handler returned {type(result).__name__}; expected dict or None")
    try:
        encoded = json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise PermanentError(f"handler outcome is not JSON: {exc}") from None
    if len(encoded) > MAX_OUTCOME_BYTES:
        raise PermanentError(
            f"handler outcome is {len(encoded)} bytes; the limit is {MAX_OUTCOME_BYTES}"
        )
    try:
        check_payload(result)
    except PublishError as exc:
        raise PermanentError(f"handler outcome cannot be stored: {exc}") from None
    return result


def _check_emitted(emitted: list[Emitted]) -> None:
    for item in emitted:
        try:
            check_fields(item.type, None, item.partition_key, 1)
            check_payload(dict(item.payload))
        except PublishError as exc:
            raise PermanentError(f"emitted event {item.type!r} is invalid: {exc}") from None
