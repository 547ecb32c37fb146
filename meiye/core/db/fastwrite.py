"""Row writes on hot paths with the SQL text built once per model, row count and connection.

``Model.objects.bulk_create`` and ``Model.save`` build an ``InsertQuery`` / ``UpdateQuery`` and compile it on
every call; on the checkout that cost more than the database's own work. These helpers write the same rows
the same way — each value through its field's ``pre_save`` (``auto_now_add``, ``auto_now``) and
``get_db_prep_save`` (JSON, encrypted fields, time zones) exactly as Django's compilers do — with SQL cached
per connection. No model here overrides ``save`` or listens to save signals; a model that does must not use
them (``bulk_create`` skips both as well).

- ``insert_rows(objs)``: new rows of one model, primary keys set from ``RETURNING`` (as ``bulk_create`` on
  PostgreSQL and SQLite 3.35+), in as many statements as the database's parameter limit needs (as
  ``bulk_create`` splits them); a value that is an expression falls back to ``bulk_create``.
  ``keys_later=True``: in a ``pipelined()`` block (``meiye.core.db.pipeline``) the INSERT is queued and the keys
  are set when its answer is in (at the next ``settle()`` or the block's end); for rows whose keys nobody reads
  before then.
- ``insert_rows_or_skip(objs, match=field)``: ``insert_rows`` where a row that a unique constraint already holds
  is left out (``ON CONFLICT DO NOTHING``) instead of failing, so the transaction stays usable (no savepoint
  needed to explain or replay a clash); returns the rows written.
- ``update_row(obj, fields)``: ``save(update_fields=fields)`` for a row known to exist (in a pipelined block,
  queued: that one row was updated is checked when the answer is in). ``update_assignments(obj, fields)``: its
  ``SET`` list and values, for a statement that writes them along with something else (the bill's number).
- ``insert_values(model, columns, rows)``: rows of plain values, no instances (a journal's entries); nothing
  is returned, so in a pipelined block it is queued.

A value whose field would hand it to the database unchanged — an ``int`` in an integer field or a foreign key
to an integer key, a ``str`` in a ``CharField`` or ``TextField``, a ``bool`` in a ``BooleanField``, ``None``
where the column allows it; exactly these classes, not their subclasses (encrypted fields are subclasses) —
skips the field's ``get_db_prep_save``: a checkout writes some 170 values, and the calls cost more than the
statements' parameters. So does, on PostgreSQL, an aware ``datetime`` in a ``DateTimeField`` (Django hands it to
psycopg as it is; SQLite's backend turns it into text, so there it takes the field's way). A ``str`` subclass in
a ``CharField`` or ``TextField`` (a ``TextChoices`` member) is written as the plain ``str`` it equals, which is
what the database receives either way; psycopg finds no adapter for such a class without walking its bases.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

from django.db import DEFAULT_DB_ALIAS, connections
from django.db import models as m
from django.db.models import Field, Model

from meiye.core.db import pipeline
from meiye.core.db.cursors import hot_cursor

M = TypeVar("M", bound=Model)

_CACHE = "_meiye_fastwrite"
PG_MAX_PARAMETERS = 65_535  # the wire protocol's limit on one statement's bound parameters


def _cache(connection: Any) -> dict[Any, Any]:
    found: dict[Any, Any] | None = getattr(connection, _CACHE, None)
    if found is None:
        found = {}
        setattr(connection, _CACHE, found)
    return found


def _insert_fields(model: type[Model]) -> list[Field[Any, Any]]:
    return [f for f in model._meta.concrete_fields if not (f.primary_key and getattr(f, "db_returning", False))]


_INTEGER_FIELDS = (
    m.IntegerField,
    m.BigIntegerField,
    m.SmallIntegerField,
    m.PositiveIntegerField,
    m.PositiveBigIntegerField,
    m.PositiveSmallIntegerField,
    m.AutoField,
    m.BigAutoField,
)


def _plain_type(field: Field[Any, Any], connection: Any) -> type | None:
    """The one Python type whose values ``field`` passes to the database unchanged, or None (see above)."""
    kind = type(field)
    if kind is m.ForeignKey:
        return _plain_type(field.target_field, connection)  # type: ignore[attr-defined]
    if kind in _INTEGER_FIELDS:
        return int
    if kind in (m.CharField, m.TextField):
        return str
    if kind is m.BooleanField:
        return bool
    if kind is m.DateTimeField and connection.vendor == "postgresql":
        return datetime  # aware ones only (``_prepared``)
    return None


def _plain_types(fields: Sequence[Field[Any, Any]], connection: Any) -> list[type | None]:
    return [_plain_type(f, connection) for f in fields]


def _prepared(
    fields: Sequence[Field[Any, Any]], obj: Model, plain: Sequence[type | None], connection: Any, *, add: bool
) -> list[Any]:
    """The values of ``obj`` for ``fields`` as Django's compiler prepares them (``pre_save`` then
    ``get_db_prep_save``, skipped for plain values); raises ``_Expression`` for an expression."""
    values = []
    for f, kind in zip(fields, plain, strict=True):
        value = f.pre_save(obj, add)
        if kind is not None:
            if type(value) is kind:
                if kind is not datetime or cast(datetime, value).utcoffset() is not None:
                    values.append(value)
                    continue
            elif value is None and f.null:
                values.append(value)
                continue
            elif kind is str and isinstance(value, str):
                values.append(str.__str__(value))  # a TextChoices member: the str it equals
                continue
        if type(value) is EncodedJSON and isinstance(f, m.JSONField):
            values.append(_encoded_json(value, connection))
            continue
        if hasattr(value, "resolve_expression"):
            raise _Expression
        values.append(f.get_db_prep_save(value, connection=connection))
    return values


class EncodedJSON(str):
    """JSON text already encoded, for a ``JSONField`` written by these helpers: handed to the database as it is
    instead of being encoded again (``meiye.api.idempotency`` stores an answer the renderer then sends)."""


def _as_is(text: str) -> str:
    return text


def _encoded_json(value: EncodedJSON, connection: Any) -> Any:
    if connection.vendor == "postgresql":
        from psycopg.types.json import Jsonb

        return Jsonb(str.__str__(value), dumps=_as_is)
    return str.__str__(value)  # SQLite's backend writes a JSONField's value as its text


def _decode_encoded_json(objs: Sequence[Model]) -> None:
    """Before handing rows to Django (an expression among their values): ``EncodedJSON`` back to the object it
    holds, which Django's ``JSONField`` encodes as usual (it would store the text as a JSON string)."""
    for obj in objs:
        for f in obj._meta.concrete_fields:
            value = obj.__dict__.get(f.attname)
            if type(value) is EncodedJSON:
                setattr(obj, f.attname, json.loads(value))


class _Expression(Exception):
    """A value is an expression: the caller lets Django compile the write."""


def insert_rows(objs: Sequence[M], *, using: str = DEFAULT_DB_ALIAS, keys_later: bool = False) -> list[M]:
    """INSERT ``objs`` (one model, no primary key yet) in one statement; returns them with their keys (with
    ``keys_later``, in a pipelined block, the keys are set when the block settles: see the module doc)."""
    if not objs:
        return list(objs)
    model = type(objs[0])
    if any(type(obj) is not model or obj.pk is not None for obj in objs):
        raise ValueError("insert_rows: new rows of one model only")
    connection = connections[using]
    cache = _cache(connection)
    found = cache.get(model)
    if found is None:
        fields = _insert_fields(model)
        found = cache[model] = (fields, _plain_types(fields, connection))
    fields, plain = found
    try:
        rows = [_prepared(fields, obj, plain, connection, add=True) for obj in objs]
    except _Expression:
        _decode_encoded_json(objs)
        return model._default_manager.using(using).bulk_create(objs)  # an expression: Django compiles it
    pk_field = model._meta.pk
    converters = connection.ops.get_db_converters(pk_field.get_col(model._meta.db_table))

    def set_keys(start: int, ids: Sequence[Any]) -> None:
        for obj, (pk,) in zip(objs[start : start + len(ids)], ids, strict=True):
            for converter in converters:
                pk = converter(pk, pk_field, connection)
            obj.pk = pk
            obj._state.adding = False
            obj._state.db = using

    sql_for = lambda n: _insert_sql(connection, cache, model, fields, n)  # noqa: E731
    if keys_later:
        _insert_chunks_later(connection, fields, rows, sql_for, set_keys)
    else:
        set_keys(0, _insert_chunks(connection, fields, rows, sql_for))
    return list(objs)


def insert_rows_or_skip(
    objs: Sequence[M], *, match: str, using: str = DEFAULT_DB_ALIAS, keys_later: bool = False
) -> list[M]:
    """``insert_rows``, but a row that would break a unique constraint is not written (``ON CONFLICT DO
    NOTHING``, PostgreSQL and SQLite 3.24+): no error, the transaction goes on. Returns the objects written,
    with their keys; the others keep ``pk`` None. ``match`` names a field (a plain ``CharField`` or integer)
    whose value tells the objects apart, read back through ``RETURNING``. Split into statements as
    ``insert_rows``; no expressions.

    ``keys_later``, in a pipelined block: the INSERT is queued and the keys of the rows written are set when
    the block settles (the list returned is empty then); which rows were skipped is known only after that."""
    if not objs:
        return list(objs)
    model = type(objs[0])
    if any(type(obj) is not model or obj.pk is not None for obj in objs):
        raise ValueError("insert_rows_or_skip: new rows of one model only")
    matcher: Any = model._meta.get_field(match)
    by_value = {getattr(obj, matcher.attname): obj for obj in objs}
    if len(by_value) != len(objs) or None in by_value:
        raise ValueError(f"insert_rows_or_skip: every row needs its own {match}")
    connection = connections[using]
    cache = _cache(connection)
    key = (model, "skip", match)
    found = cache.get(key)
    if found is None:
        fields = _insert_fields(model)
        found = cache[key] = (fields, _plain_types(fields, connection))
    fields, plain = found
    rows = [_prepared(fields, obj, plain, connection, add=True) for obj in objs]  # _Expression: not supported

    def sql_for(n: int) -> str:
        sql: str | None = cache.get((model, "skip", match, n))
        if sql is None:
            qn = connection.ops.quote_name
            insert = _insert_sql(connection, cache, model, fields, n).rsplit(" RETURNING ", 1)[0]
            returning = f"{qn(str(model._meta.pk.column))}, {qn(str(matcher.column))}"
            sql = cache[(model, "skip", match, n)] = f"{insert} ON CONFLICT DO NOTHING RETURNING {returning}"
        return sql

    written: list[M] = []

    def set_keys(_start: int, returned: Sequence[Any]) -> None:
        for pk, value in returned:
            obj = by_value[value]
            obj.pk = pk
            obj._state.adding = False
            obj._state.db = using
            written.append(obj)

    if keys_later:  # which rows were skipped is an answer its caller acts on: known before any COMMIT
        _insert_chunks_later(connection, fields, rows, sql_for, set_keys, before_commit=True)
        return []
    set_keys(0, _insert_chunks(connection, fields, rows, sql_for))
    return written


def insert_values(
    model: type[Model], columns: Sequence[str], rows: Sequence[Sequence[Any]], *, using: str = DEFAULT_DB_ALIAS
) -> None:
    """INSERT ``rows`` of ``model``, each the values of ``columns`` as the database takes them (ints, strings:
    no model instance, no field's conversion — for rows of plain values written many per checkout, like a
    journal's entries). Split into statements as ``insert_rows`` splits them; nothing is returned."""
    if not rows:
        return
    connection = connections[using]
    cache = _cache(connection)
    key = (model, "values", tuple(columns))
    fields = cache.get(key)
    if fields is None:
        fields = cache[key] = [model._meta.get_field(name) for name in columns]
    _insert_chunks_later(connection, fields, rows, lambda n: _values_sql(connection, cache, model, fields, n), None)


def _insert_chunks(
    connection: Any, fields: Sequence[Any], rows: Sequence[Sequence[Any]], sql_for: Callable[[int], str]
) -> list[Any]:
    """Run ``sql_for(n)`` (an INSERT of ``n`` rows … RETURNING) over ``rows`` in as many statements as the
    database's parameter limit needs; the rows the statements return."""
    returned: list[Any] = []
    for chunk, params in _chunks(connection, fields, rows):
        with hot_cursor(connection, len(params)) as cursor:
            cursor.execute(sql_for(len(chunk)), params)
            returned.extend(cursor.fetchall())
    return returned


def _insert_chunks_later(
    connection: Any,
    fields: Sequence[Any],
    rows: Sequence[Sequence[Any]],
    sql_for: Callable[[int], str],
    then: Callable[[int, list[Any]], None] | None,
    *,
    before_commit: bool = False,
) -> None:
    """``_insert_chunks`` through ``pipeline.later``: queued in a pipelined block. ``then(start, returned)`` gets
    each statement's returned rows (``RETURNING``) with the index of its first row, once they are in; with no
    ``then`` the statement returns nothing. ``before_commit``: ``then`` decides something, so it runs before a
    COMMIT queued behind it (``pipeline.later``); by default it only sets keys."""
    start = 0
    for chunk, params in _chunks(connection, fields, rows):
        answer = None if then is None else (lambda cursor, at=start: then(at, cursor.fetchall()))
        pipeline.later(
            connection,
            hot_cursor(connection, len(params)),
            sql_for(len(chunk)),
            params,
            answer,
            before_commit=before_commit,
        )
        start += len(chunk)


def _chunks(
    connection: Any, fields: Sequence[Any], rows: Sequence[Sequence[Any]]
) -> list[tuple[Sequence[Sequence[Any]], list[Any]]]:
    """``rows`` in as many statements as the database's parameter limit needs: each chunk with its flat
    parameters."""
    size = _batch_size(connection, fields, rows)
    chunks = []
    for start in range(0, len(rows), size):
        chunk = rows[start : start + size]
        chunks.append((chunk, [value for row in chunk for value in row]))
    return chunks


def _values_sql(connection: Any, cache: dict[Any, Any], model: type[Model], fields: Sequence[Any], n: int) -> str:
    key = (model, "values", tuple(f.column for f in fields), n)
    sql: str | None = cache.get(key)
    if sql is None:
        qn = connection.ops.quote_name
        row = "(" + ", ".join(["%s"] * len(fields)) + ")"
        columns = ", ".join(qn(str(f.column)) for f in fields)
        sql = cache[key] = f"INSERT INTO {qn(model._meta.db_table)} ({columns}) VALUES {', '.join([row] * n)}"  # noqa: S608 - names from the model
    return sql


def _batch_size(connection: Any, fields: Sequence[Field[Any, Any]], objs: Sequence[Any]) -> int:
    """Rows per statement, as ``bulk_create`` splits them: SQLite's variable limit (``bulk_batch_size``); on
    PostgreSQL, the protocol's 65,535 parameters when they are bound on the server (``MEIYE_PG_PREPARED``)."""
    size = connection.ops.bulk_batch_size(fields, objs)
    if connection.vendor == "postgresql" and connection.settings_dict.get("OPTIONS", {}).get("server_side_binding"):
        size = min(size, PG_MAX_PARAMETERS // max(len(fields), 1))
    return max(int(size), 1)


def _insert_sql(connection: Any, cache: dict[Any, Any], model: type[Model], fields: Sequence[Any], n: int) -> str:
    key = (model, n)
    sql: str | None = cache.get(key)
    if sql is None:
        qn = connection.ops.quote_name
        table = qn(model._meta.db_table)
        columns = ", ".join(qn(str(f.column)) for f in fields)
        row = "(" + ", ".join(["%s"] * len(fields)) + ")"
        pk = qn(str(model._meta.pk.column))
        sql = cache[key] = f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * n)} RETURNING {pk}"  # noqa: S608 - names from the model
    return sql


def _update_shape(model: type[Model], fields: Sequence[str], connection: Any) -> tuple[str, str, list[Any], Any]:
    """(the UPDATE's text, its ``SET`` list, the fields, their plain types), cached per field list."""
    cache = _cache(connection)
    key = (model, "update", tuple(fields))
    found = cache.get(key)
    if found is None:
        opts = model._meta
        concrete: list[Any] = [opts.get_field(name) for name in fields]
        qn = connection.ops.quote_name
        assignments = ", ".join(f"{qn(f.column)} = %s" for f in concrete)
        sql = f"UPDATE {qn(opts.db_table)} SET {assignments} WHERE {qn(str(opts.pk.column))} = %s"  # noqa: S608
        found = cache[key] = (sql, assignments, concrete, _plain_types(concrete, connection))
    return found


def update_assignments(obj: Model, fields: Sequence[str], *, using: str = DEFAULT_DB_ALIAS) -> tuple[str, list[Any]]:
    """The ``SET`` list ``update_row(obj, fields)`` would send (``"col" = %s, …``) and its values, prepared as it
    prepares them, for a statement that writes them along with something else. A value that is an expression
    raises ``ValueError``: such a statement cannot fall back to ``save``."""
    connection = connections[using]
    _sql, assignments, concrete, plain = _update_shape(type(obj), fields, connection)
    try:
        return assignments, _prepared(concrete, obj, plain, connection, add=False)
    except _Expression:
        raise ValueError("update_assignments: a value is an expression") from None


def update_row(obj: Model, fields: Sequence[str], *, using: str = DEFAULT_DB_ALIAS) -> None:
    """``obj.save(update_fields=fields)`` for a row that exists, with the SQL cached per field list."""
    model = type(obj)
    connection = connections[using]
    sql, _assignments, concrete, plain = _update_shape(model, fields, connection)
    try:
        params = _prepared(concrete, obj, plain, connection, add=False)
    except _Expression:
        _decode_encoded_json([obj])
        obj.save(update_fields=list(fields), using=using)
        return
    params.append(obj.pk)
    pk = obj.pk

    def one_row(cursor: Any) -> None:
        if cursor.rowcount != 1:
            missing: Any = model
            raise missing.DoesNotExist(f"update_row: {model.__name__} {pk} was not updated")

    pipeline.later(connection, hot_cursor(connection, len(params)), sql, params, one_row)
