"""The cursor the hot paths' fixed-shape statements run on.

On PostgreSQL, Django binds parameters on the client (psycopg's ``ClientCursor``): each statement reaches the
server as new text, which the server parses and plans again — for the checkout's reads (the member scoped by
her visible stores, the items with their prices and rates, the store with its rules) planning cost more than
running them. The statements of ``meiye.core.db.prepared`` (reads), ``meiye.core.db.fastwrite`` (row writes)
and the ledger's hand-written lock and balance update have a fixed text per shape, so they are worth
preparing: ``hot_cursor`` gives them a cursor that binds parameters on the server and prepares each statement
on its first use in a connection (planned once; psycopg keeps the 100 most recent per connection).

``MEIYE_PG_PREPARED`` (settings ``MEIYE_PG_PREPARED``): ``hot`` (the default) does this for the hot paths only;
``1`` binds and prepares every statement (Django's ``server_side_binding``, so this cursor is the plain one);
``0`` prepares nothing — for a transaction-pooling pgbouncer, which cannot keep prepared statements.

The cursor is Django's wrapper around it, so query logging (with the values in place), execute wrappers,
``django_assert_num_queries`` and error translation see these statements like any other. SQLite
needs none of this: Python's ``sqlite3`` already keeps compiled statements per connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from django.conf import settings
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper

_NEVER_BY_COUNT = 2**31 - 1
_preparing_cursor: Any = None  # the psycopg cursor class, made on first use (psycopg exists only with PostgreSQL)


# A statement with more parameters is a batch (a job, an import), not the hot path: not worth keeping prepared,
# and the protocol's limit for server-side parameters is 65,535.
HOT_MAX_PARAMETERS = 2_000


def hot_cursor(connection: Any, parameters: int = 0) -> Any:
    """A cursor for a fixed-shape statement with ``parameters`` parameters (see the module doc);
    ``connection.cursor()`` where nothing applies."""
    if (
        connection.vendor != "postgresql"
        or parameters > HOT_MAX_PARAMETERS
        or getattr(settings, "MEIYE_PG_PREPARED", "hot") != "hot"
    ):
        return connection.cursor()
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:
        # Django turns psycopg's statement preparation off (None), which also ignores ``prepare=True``. A
        # threshold no statement reaches turns it on for this cursor only: Django's own cursors bind on the
        # client and are never prepared.
        raw.prepare_threshold = _NEVER_BY_COUNT
    with connection.wrap_database_errors:
        cursor = _cursor_class()(raw)
    connection.validate_thread_sharing()
    return _LoggedCursor(cursor, connection) if connection.queries_logged else CursorWrapper(cursor, connection)


class _LoggedCursor(CursorDebugWrapper):
    """Django's logging cursor; the statement is logged with its values in place (``compose_sql``), as the
    client-side cursors' are — psycopg keeps no text of a prepared statement's execution."""

    @contextmanager
    def debug_sql(
        self, sql: Any = None, params: Any = None, use_last_executed_query: bool = False, many: bool = False
    ) -> Iterator[None]:
        if use_last_executed_query and not many:
            from psycopg import errors

            with suppress(errors.DataError):  # a value psycopg cannot quote: logged as written
                sql = self.db.ops.compose_sql(sql, params)
        with super().debug_sql(sql, params, use_last_executed_query=False, many=many):
            yield


# psycopg converts each statement's text into the server's form (``%s`` to ``$1``, the parts between) on every
# execution, and caches the result only for statements under 4,096 bytes and 50 parameters: ORMs build long
# statements of ever-changing shape, which would crowd its cache. The hot statements are long but of a fixed
# shape per text (the checkout's reads are joins of many columns, its writes multi-row inserts), so their
# conversion is kept here, by text, for the hot cursor only: it cost 5% of a checkout's Python.
HOT_CONVERTED_MAX = 512
_hot_converted: dict[tuple[str, str], Any] = {}


def _hot_query_class(psycopg: Any) -> Any:
    """psycopg's query class with the conversion kept by text; psycopg's own where its internals differ."""
    try:
        from psycopg._queries import PostgresQuery, _query2pg_nocache
    except ImportError:  # pragma: no cover - another psycopg layout: its own conversion, uncached
        return psycopg.Cursor._query_cls

    class HotQuery(PostgresQuery):
        __slots__ = ()

        def convert(self, query: Any, vars: Any) -> None:
            if vars is None or type(query) is not str:
                return super().convert(query, vars)
            encoding = self._tx.encoding
            key = (query, encoding)
            converted = _hot_converted.get(key)
            if converted is None:
                if len(_hot_converted) >= HOT_CONVERTED_MAX:
                    _hot_converted.clear()
                converted = _hot_converted[key] = _query2pg_nocache(query.encode(encoding), encoding)
            self.query, self._want_formats, self._order, self._parts = converted
            self.dump(vars)

    return HotQuery


def _cursor_class() -> Any:
    global _preparing_cursor
    if _preparing_cursor is None:
        import psycopg

        class PreparingCursor(psycopg.Cursor):
            """Server-side parameters; every statement prepared on its first execution in the connection."""

            _query_cls = _hot_query_class(psycopg)

            def execute(
                self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: Any = None
            ) -> Any:
                return super().execute(query, params, prepare=True, binary=binary)

        _preparing_cursor = PreparingCursor
    return _preparing_cursor
