"""Handlers' memory across events: ``ctx.state``, one JSON document per (handler, partition key).

A run reads the document and its version when the handler first touches ``ctx.state``
(``loader``). What the handler leaves is checked (``pending``: JSON that PostgreSQL stores
faithfully, known secrets replaced, at most ``SWITCHYARD_STATE_MAX_BYTES``) and written by
``events.transitions.succeed`` in the transaction that records the success (``write``), as a
compare-and-set: an UPDATE conditional on the version read, or for a first write an INSERT
that does nothing when another run inserted first. When the compare fails, ``write`` raises
``StateConflict``, that transaction rolls back (nothing of the run is recorded) and
events.delivery runs the handler again on the fresh state, at most ``MAX_RUNS`` times in one
attempt. So two deliveries of one key never overwrite each other's update.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.utils import timezone

from agents_project.db import releasing
from handlers.context import HandlerContext, StateSnapshot
from handlers.errors import PermanentError

from . import conf, rows
from .models import HandlerState
from .publish import PublishError, check_payload
from .redaction import Sanitiser

# Runs of the handler within one attempt when its state keeps changing under it; past this the
# attempt fails as a TransientError and the delivery is retried after its backoff.
MAX_RUNS = 5


class StateConflict(Exception):
    """The state changed since this run read it; nothing of the run was recorded."""


@dataclass(frozen=True)
class StateWrite:
    """What a successful run leaves in its handler's state, and the version it read."""

    handler: str
    partition_key: str
    data: dict[str, Any]
    read_version: int  # 0: there was none


def label(handler: str, partition_key: str) -> str:
    """How errors and logs name one document."""
    return f"{handler}/{partition_key}" if partition_key else f"{handler}/(no partition key)"


def read(handler: str, partition_key: str) -> StateSnapshot:
    row = (
        HandlerState.objects.filter(handler=handler, partition_key=partition_key)
        .values_list("data", "version")
        .first()
    )
    if row is None:
        return StateSnapshot(data={}, version=0)
    data, version = row
    return StateSnapshot(data=data if isinstance(data, dict) else {}, version=version)


def loader(handler: str, partition_key: str) -> Callable[[], StateSnapshot]:
    """``ctx.load_state`` for a run: one short read whose connection goes back to the pool."""
    return releasing(lambda: read(handler, partition_key))


def compact(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def pending(ctx: HandlerContext, clean: Sanitiser) -> StateWrite | None:
    """What the run's success must write: None when the handler never touched ``ctx.state``
    or left it as it read it. A PermanentError (the run is dead-lettered, nothing written)
    when it cannot be stored or is over the size limit."""
    left, was = ctx.state_left(), ctx.state_read
    if left is None or was is None:
        return None
    where = label(ctx.handler, ctx.event.partition_key)
    try:
        check_payload(left)
    except PublishError as exc:
        raise PermanentError(
            f"state for {where} cannot be stored: {str(exc).replace('payload ', 'it ', 1)}"
        ) from None
    data = clean.json(left)
    encoded = compact(data)
    size = len(encoded.encode())
    limit = conf.STATE_MAX_BYTES.get()
    if size > limit:
        raise PermanentError(f"state for {where} is {size} bytes, over the limit of {limit}")
    # Compared as JSON: 1 and True are equal in Python, not in the document.
    if json.dumps(data, sort_keys=True) == json.dumps(was.data, sort_keys=True):
        return None
    return StateWrite(ctx.handler, ctx.event.partition_key, data, was.version)


def write(change: StateWrite, delivery_id: int | None, edited_by: str = "") -> None:
    """Write ``change`` if the stored version is still the one it read, inside the caller's
    transaction; StateConflict otherwise."""
    now = timezone.now()
    values: dict[str, Any] = {
        "data": change.data,
        "updated_at": now,
        "updated_by_delivery": delivery_id,
        "edited_by": edited_by,
    }
    won: int | bool
    if change.read_version == 0:
        won = _insert(change, values)
    else:
        won = rows.update(
            HandlerState,
            "handler = %s AND partition_key = %s AND version = %s",
            [change.handler, change.partition_key, change.read_version],
            values,
            raw={"version": "version + 1"},
        )
    if not won:
        raise StateConflict(
            f"state for {label(change.handler, change.partition_key)} changed since version "
            f"{change.read_version} was read"
        )


def _insert(change: StateWrite, values: dict[str, Any]) -> bool:
    """The first write: INSERT ... ON CONFLICT DO NOTHING (PostgreSQL and SQLite)."""
    quote = connection.ops.quote_name
    row = {"handler": change.handler, "partition_key": change.partition_key, "version": 1}
    row.update(values)
    columns = [HandlerState._meta.get_field(name) for name in row]
    sql = (
        f"INSERT INTO {quote(HandlerState._meta.db_table)} "  # noqa: S608 - names from the model
        f"({', '.join(quote(getattr(f, 'column', '')) for f in columns)}) "
        f"VALUES ({', '.join(['%s'] * len(row))}) "
        "ON CONFLICT (handler, partition_key) DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [rows.db_value(HandlerState, name, v) for name, v in row.items()])
        return cursor.rowcount == 1
