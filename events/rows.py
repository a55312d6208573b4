"""Plain-SQL reads and writes for the statements every delivery runs.

A delivery's claim and outcome are a handful of small statements on indexed rows. Through the
ORM, compiling them cost the worker several times the CPU the database spent answering them
(a profile of ``execute()``: the claim's four-table ``select_related`` alone took longer to
compile than the whole transaction took PostgreSQL), and a worker running hundreds of agents
is bound by that CPU. So these few statements are written once, as SQL built from the models'
own metadata, and values pass through each field's own conversion both ways, so they read and
write exactly what the ORM would. They work on PostgreSQL and SQLite.
tests/pipeline/test_rows.py checks them against the ORM.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import CharField, Field, Model
from django.utils import timezone

from .models import Attempt, Delivery, Event, Route, Source

# (model, table alias) in the order their columns appear in the fetch below.
_FETCHED: tuple[tuple[type[Model], str], ...] = (
    (Delivery, "d"),
    (Route, "r"),
    (Event, "e"),
    (Source, "s"),
)
_Converter = Callable[[Any, Any, Any], Any]


def _db() -> BaseDatabaseWrapper:
    """This thread's connection itself: ``django.db.connection`` is a proxy that looks it up
    on every attribute, and these functions touch it once per column."""
    return connections[DEFAULT_DB_ALIAS]


def _columns(model: type[Model]) -> list[Field[Any, Any]]:
    return list(model._meta.concrete_fields)


@cache
def _fetch_plan(vendor: str) -> tuple[str, list[tuple[Any, list[_Converter]]]]:
    """The delivery fetch's SQL and, per selected column, its expression and converters."""
    quote = connection.ops.quote_name
    selected: list[str] = []
    plan: list[tuple[Any, list[_Converter]]] = []
    for model, alias in _FETCHED:
        for field in _columns(model):
            selected.append(f"{alias}.{quote(field.column or '')}")
            col = field.get_col(alias)
            converters = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
            plan.append((col, converters))
    d, r, e, s = (quote(m._meta.db_table) for m, _ in _FETCHED)
    sql = (
        f"SELECT {', '.join(selected)} FROM {d} d "  # noqa: S608 - names from the models
        f"JOIN {e} e ON e.id = d.event_id "
        f"JOIN {s} s ON s.id = e.source_id "
        f"LEFT JOIN {r} r ON r.id = d.route_id "
        "WHERE d.id = %s"
    )
    return sql, plan


def fetch_delivery(delivery_id: int) -> Delivery | None:
    """``Delivery.objects.select_related("route", "event__source").filter(id=...).first()``
    in one statement, without compiling a query each time."""
    db = _db()
    sql, _ = _fetch_plan(db.vendor)
    with db.cursor() as cursor:
        cursor.execute(sql, [delivery_id])
        row = cursor.fetchone()
    return None if row is None else delivery_from_row(row)


def fetch_sql() -> str:
    """``fetch_delivery``'s SELECT (one parameter, the delivery's id), to run as a step of a
    larger statement; its row becomes a Delivery through ``delivery_from_row``."""
    return _fetch_plan(_db().vendor)[0]


def delivery_from_row(row: Sequence[Any]) -> Delivery:
    """The Delivery, with its route, event and source, of a row of ``fetch_sql``'s columns."""
    db = _db()
    _, plan = _fetch_plan(db.vendor)
    values = [
        _convert(value, converters, col, db)
        for value, (col, converters) in zip(row, plan, strict=True)
    ]
    instances: list[Model | None] = []
    start = 0
    for model, _ in _FETCHED:
        fields = _columns(model)
        chunk = values[start : start + len(fields)]
        start += len(fields)
        # A missing route (deleted: the delivery keeps running on its handler's defaults).
        instances.append(None if chunk[0] is None else model.from_db(db.alias, [], chunk))
    delivery, route, event, source = instances
    assert isinstance(delivery, Delivery) and isinstance(event, Event)
    assert isinstance(source, Source)
    event.source = source
    delivery.event = event
    delivery.route = route if isinstance(route, Route) else None
    return delivery


def _convert(
    value: Any, converters: Sequence[_Converter], col: Any, db: BaseDatabaseWrapper
) -> Any:
    for converter in converters:
        value = converter(value, col, db)
    return value


def db_value(model: type[Model], name: str, value: Any) -> Any:
    """``value`` as ``model.name`` is written to the database (JSON adapted, etc.)."""
    return _field(model, name).get_db_prep_save(value, _db())


def _field(model: type[Model], name: str) -> Field[Any, Any]:
    field = model._meta.get_field(name)
    assert isinstance(field, Field)
    return field


def insert(obj: Model) -> int:
    """``obj.save()`` for a new row with an auto id: one INSERT ... RETURNING id."""
    sql, params = insert_sql(obj)
    db = _db()
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    assert row is not None
    obj.pk = int(row[0])
    obj._state.adding = False
    obj._state.db = db.alias
    return obj.pk


def insert_sql(
    obj: Model, after: str = "", exprs: tuple[tuple[str, str], ...] = ()
) -> tuple[str, list[Any]]:
    """The INSERT ... RETURNING id of ``obj``'s row and its parameters. With ``after`` (SQL
    such as ``FROM claimed``), an INSERT ... SELECT that writes the row only if ``after`` yields
    one: for a statement of several steps (``together``); each value is cast to its column's
    type there, as a SELECT list gives no column to infer it from. ``exprs`` ((field name, SQL)
    pairs, with ``after`` only) write those columns from SQL over ``after`` instead of from
    ``obj``."""
    db = _db()
    sql, fields = _insert_statement(type(obj), after, db.vendor, exprs)
    named = dict(exprs)
    return sql, [
        f.get_db_prep_save(f.pre_save(obj, add=True), db) for f in fields if f.name not in named
    ]


@cache
def _insert_statement(
    model: type[Model], after: str, vendor: str, exprs: tuple[tuple[str, str], ...] = ()
) -> tuple[str, list[Field[Any, Any]]]:
    fields = [f for f in _columns(model) if not f.primary_key]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column or "") for f in fields)
    named = dict(exprs)
    if after:
        casts = ", ".join(named.get(f.name) or f"CAST(%s AS {_cast_type(f)})" for f in fields)
        values = f"SELECT {casts} {after}"
    else:
        values = f"VALUES ({', '.join(['%s'] * len(fields))})"
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) {values} RETURNING id"
    return sql, fields


def _cast_type(field: Field[Any, Any]) -> str:
    # Text, not varchar(n): a cast would cut a long value where the column refuses it.
    return "text" if isinstance(field, CharField) else str(field.cast_db_type(connection))


def insert_attempt(delivery: Delivery, number: int, started_at: Any, worker: str) -> int:
    """``Attempt.objects.create(...)``: the running attempt's row; returns its id."""
    return insert(Attempt(delivery=delivery, number=number, started_at=started_at, worker=worker))


def _column(model: type[Model], name: str) -> str:
    field = model._meta.get_field(name)
    assert isinstance(field, Field) and field.column is not None
    return field.column


def update(
    model: type[Model],
    where: str,
    where_params: Sequence[Any],
    values: dict[str, Any],
    raw: dict[str, str] | None = None,
) -> int:
    """``UPDATE <model> SET <values> [, <raw SQL>] WHERE <where>``; the rows changed.

    ``values`` go through each field's own conversion; ``raw`` holds SQL expressions over the
    row's own columns (``"attempts + 1"``). A Delivery's ``updated_at`` is set as the ORM's
    queryset update does.
    """
    sql, params = update_sql(model, where, where_params, values, raw)
    with _db().cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


def update_sql(
    model: type[Model],
    where: str,
    where_params: Sequence[Any],
    values: dict[str, Any],
    raw: dict[str, str] | None = None,
    returning: str = "",
    raw_params: Sequence[Any] = (),
) -> tuple[str, list[Any]]:
    """``update``'s statement and parameters, to run alone or as a step of ``together``;
    ``raw_params`` are those of the ``raw`` expressions, in their order."""
    db = _db()
    quote = db.ops.quote_name
    if model is Delivery:
        values = {"updated_at": timezone.now(), **values}
    assignments = [f"{quote(_column(model, name))} = %s" for name in values]
    params = [_field(model, name).get_db_prep_save(value, db) for name, value in values.items()]
    assignments += [f"{quote(name)} = {expression}" for name, expression in (raw or {}).items()]
    sql = (
        f"UPDATE {quote(model._meta.db_table)} SET {', '.join(assignments)} "  # noqa: S608
        f"WHERE {where}"
    )
    if returning:
        sql += f" RETURNING {returning}"
    return sql, [*params, *raw_params, *where_params]


Step = tuple[str, tuple[str, list[Any]]]


def together(steps: Sequence[Step], select: str) -> tuple[Any, ...] | None:
    """Several writes as one statement (one round trip), PostgreSQL only: each step a named
    data-modifying ``WITH`` query, then ``select`` over them; its first row.

    Every step runs, whether or not ``select`` reads it, on the snapshot taken when the
    statement began: a step that must run only if an earlier one changed a row says so itself
    (``... WHERE EXISTS (SELECT 1 FROM <name>)``), and no step sees another's writes except
    through what it RETURNs."""
    sql, params = together_sql(steps, select)
    with _db().cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def together_sql(steps: Sequence[Step], select: str) -> tuple[str, list[Any]]:
    """``together``'s statement and parameters, to run in a ``batch``."""
    queries = ", ".join(f"{name} AS ({sql})" for name, (sql, _) in steps)
    params = [value for _, (_, step_params) in steps for value in step_params]
    return f"WITH {queries} {select}", params


def batch(statements: Sequence[tuple[str, list[Any]]]) -> list[tuple[Any, ...] | None]:
    """Statements sent in one round trip, PostgreSQL only; the first row of each.

    PostgreSQL runs them in order, each on a snapshot of its own taken when it starts, so a
    statement after one that waited for a row lock sees what the lock holder committed. Outside
    a transaction they are one transaction of their own: its BEGIN and COMMIT cost no round
    trips (Django's client-side binding sends them as one query string)."""
    sql = "; ".join(text for text, _ in statements)
    params = [value for _, statement_params in statements for value in statement_params]
    found: list[tuple[Any, ...] | None] = []
    with _db().cursor() as cursor:
        cursor.execute(sql, params)
        found.append(cursor.fetchone())
        while cursor.nextset():
            found.append(cursor.fetchone())
    return found
