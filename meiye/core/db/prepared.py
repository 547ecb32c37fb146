"""Querysets of a fixed shape, compiled to SQL once per database connection and run again with new values.

Building and compiling a queryset costs far more Python than running its SQL (0.3–1 ms against tens of
microseconds for a primary-key read): on the checkout's hot path that was most of the request. A
``PreparedQuery`` keeps the queryset written with the ORM — same filters, joins, annotations, scoping — but
compiles it only the first time each connection runs it. The arguments are found in the compiled SQL's
parameters by sentinel values: the builder is called once with sentinels in place of the real arguments, and
every parameter equal to a sentinel is replaced by the real value on each run. Rows become model instances
exactly as Django's ``ModelIterable`` makes them (``from_db``, ``select_related`` populators, annotations,
database converters), or tuples for a ``values_list`` queryset.

Rules for a builder:
- it takes only the declared arguments, and every argument must reach the SQL as a parameter, unchanged
  (``filter(pk=arg)``, ``filter(code=arg)``, ``pk__in=[*args]``); an argument that disappears or is
  transformed by a field (a blind index, a lower-cased slug) is refused when the query is first compiled;
- its *shape* must not depend on the arguments' values: a caller whose branches build different SQL (an HQ
  actor sees every store, a receptionist only her own) declares one prepared query per branch; a
  variable-length ``__in`` list (``variadic``) is compiled once per length;
- anything else it reads (settings, the time) is frozen into the first compilation: pass it as an argument.

The cache lives on the connection object (one per thread), so compiled queries are never shared between
threads, and a new connection compiles again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any, Generic, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model, QuerySet
from django.db.models import query as django_query
from django.db.models.query import ValuesListIterable

from meiye.core.db.cursors import hot_cursor

M = TypeVar("M", bound=Model)

_ids = count()
# Sentinels: values no real argument or constant has, one per argument position.
_INT_BASE = 2_147_093_117  # within a 32-bit INTEGER: Django drops out-of-range lookups
_STR_MARK = "\x1fmeiye-prepared-{}\x1f"


# An aware datetime reaches the SQL as the backend adapts it (unchanged on PostgreSQL, a UTC string on SQLite):
# its sentinel is found in that form, and each run adapts the real value the same way.
_DATETIME_BASE = datetime(1901, 2, 3, 4, 5, 6, tzinfo=UTC)


def _sentinel(kind: type, index: int) -> Any:
    if kind is int:
        return _INT_BASE + index
    if kind is str:
        return _STR_MARK.format(index)
    if kind is datetime:
        return _DATETIME_BASE + timedelta(microseconds=index + 1)
    raise TypeError(f"prepared query arguments are int, str or datetime, not {kind.__name__}")


@dataclass
class _Compiled:
    sql: str
    params: list[Any]
    slots: list[tuple[int, int, Any]]  # (parameter position, argument index, the backend's wrapper or None)
    compiler: Any
    converters: Any
    rows_only: bool  # a values_list queryset: tuples, not instances
    init_list: list[str]
    model_slice: tuple[int, int]
    populators: list[Any]
    annotation_col_map: dict[str, int]
    model: type[Model] | None


# Django 5.2's ``get_related_populators(klass_info, select, db)`` (the stubs describe a later signature).
_related_populators: Any = django_query.get_related_populators


class PreparedQuery(Generic[M]):
    """A queryset built by ``build(*args)``, compiled once per connection; see the module doc.

    ``kinds`` declares each argument's type (``int``, ``str`` or an aware ``datetime``); with ``variadic`` the last kind repeats
    (``pk__in`` lists) and the query is compiled once per number of arguments.
    """

    def __init__(self, build: Callable[..., QuerySet[M]], kinds: Sequence[type], *, variadic: bool = False) -> None:
        self.build = build
        self.kinds = tuple(kinds)
        self.variadic = variadic
        self.name = f"_meiye_prepared_{next(_ids)}"

    def all(self, *args: Any, using: str = DEFAULT_DB_ALIAS) -> list[Any]:
        """The rows: model instances, or tuples for a ``values_list`` queryset."""
        connection = connections[using]
        compiled = self._compiled(connection, len(args))
        params = list(compiled.params)
        for position, index, wrap in compiled.slots:
            params[position] = args[index] if wrap is None else wrap(args[index])
        with hot_cursor(connection, len(params)) as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        if not rows:
            return []
        compiler = compiled.compiler
        converted = list(compiler.apply_converters(rows, compiled.converters)) if compiled.converters else rows
        if compiled.rows_only:
            return [tuple(row) for row in converted]
        model = compiled.model
        assert model is not None
        start, end = compiled.model_slice
        objects = []
        for row in converted:
            obj = model.from_db(using, compiled.init_list, row[start:end])
            for populator in compiled.populators:
                populator.populate(row, obj)
            for attr_name, col_pos in compiled.annotation_col_map.items():
                setattr(obj, attr_name, row[col_pos])
            objects.append(obj)
        return objects

    def first(self, *args: Any, using: str = DEFAULT_DB_ALIAS) -> Any:
        """The first row or None (the builder orders and slices it; this adds nothing)."""
        found = self.all(*args, using=using)
        return found[0] if found else None

    def _kinds_for(self, n: int) -> tuple[type, ...]:
        if self.variadic:
            fixed = self.kinds[:-1]
            return fixed + (self.kinds[-1],) * (n - len(fixed))
        return self.kinds

    def _compiled(self, connection: Any, n: int) -> _Compiled:
        cache: dict[int, _Compiled] | None = getattr(connection, self.name, None)
        if cache is None:
            cache = {}
            setattr(connection, self.name, cache)
        found = cache.get(n)
        if found is None:
            found = cache[n] = self._compile(connection, n)
        return found

    def _compile(self, connection: Any, n: int) -> _Compiled:
        kinds = self._kinds_for(n)
        if len(kinds) != n:
            raise TypeError(f"prepared query takes {len(kinds)} arguments, got {n}")
        sentinels = [_sentinel(kind, index) for index, kind in enumerate(kinds)]
        queryset = self.build(*sentinels)
        compiler = queryset.query.get_compiler(connection=connection)
        sql, raw_params = compiler.as_sql()
        params = list(raw_params)
        adapt = connection.ops.adapt_datetimefield_value
        expected = [
            adapt(sentinel) if kind is datetime else sentinel for kind, sentinel in zip(kinds, sentinels, strict=True)
        ]
        slots = []
        seen = set()
        for position, value in enumerate(params):
            for index, sentinel in enumerate(expected):
                if kinds[index] is datetime:
                    if type(value) is type(sentinel) and value == sentinel:
                        slots.append((position, index, adapt))
                        seen.add(index)
                # An int may come back wrapped by the backend (psycopg's Int4 / Int8 on PostgreSQL, a subclass of
                # int): each run wraps the real value the same way.
                elif isinstance(value, type(sentinel)) and not isinstance(value, bool) and value == sentinel:
                    slots.append((position, index, type(value) if type(value) is not type(sentinel) else None))
                    seen.add(index)
        missing = [index for index in range(n) if index not in seen]
        if missing:
            raise ValueError(f"prepared query: arguments {missing} do not reach the SQL as parameters unchanged")
        fields = [s[0] for s in compiler.select[0 : compiler.col_count]]
        converters = compiler.get_converters(fields)
        rows_only = issubclass(queryset._iterable_class, ValuesListIterable)
        if rows_only:
            return _Compiled(sql, params, slots, compiler, converters, True, [], (0, 0), [], {}, None)
        if queryset._iterable_class.__name__ != "ModelIterable" or getattr(queryset, "_known_related_objects", None):
            raise TypeError("prepared query: a plain model or values_list queryset only")
        select, klass_info = compiler.select, compiler.klass_info
        select_fields = klass_info["select_fields"]
        start, end = select_fields[0], select_fields[-1] + 1
        return _Compiled(
            sql=sql,
            params=params,
            slots=slots,
            compiler=compiler,
            converters=converters,
            rows_only=False,
            init_list=[f[0].target.attname for f in select[start:end]],
            model_slice=(start, end),
            populators=_related_populators(klass_info, select, connection.alias),
            annotation_col_map=dict(compiler.annotation_col_map or {}),
            model=klass_info["model"],
        )
