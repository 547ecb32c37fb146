"""Database triggers that make a table append-only, on PostgreSQL and SQLite.

Used from migrations: ``migrations.RunPython(append_only("audit_auditlog"), drop_append_only(...))``.

UPDATE and DELETE of a row are always refused. The one exception is the test suite's flush between
transactional tests: PostgreSQL flushes with TRUNCATE (not guarded here: it needs the table owner),
and on SQLite a DELETE passes only when the connection's ``meiye_purge_allowed()`` function says so,
which is registered on every SQLite connection and is true only with ``MEIYE_ALLOW_PURGE`` (tests).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _statements(vendor: str, table: str) -> list[str]:
    if vendor == "postgresql":
        return [
            f"""
            CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION '{table} is append-only: % refused', TG_OP;
            END;
            $$ LANGUAGE plpgsql;
            """,
            f"DROP TRIGGER IF EXISTS {table}_no_update ON {table};",
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only();",
        ]
    if vendor == "sqlite":
        return [
            f"DROP TRIGGER IF EXISTS {table}_no_update;",
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: UPDATE refused'); END;",
            f"DROP TRIGGER IF EXISTS {table}_no_delete;",
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
            f"WHEN NOT meiye_purge_allowed() BEGIN SELECT RAISE(ABORT, '{table} is append-only: DELETE refused'); END;",
        ]
    raise NotImplementedError(f"append-only triggers are not written for {vendor}")


def _drop(vendor: str, table: str) -> list[str]:
    if vendor == "postgresql":
        return [
            f"DROP TRIGGER IF EXISTS {table}_no_update ON {table};",
            f"DROP FUNCTION IF EXISTS {table}_append_only();",
        ]
    return [f"DROP TRIGGER IF EXISTS {table}_no_update;", f"DROP TRIGGER IF EXISTS {table}_no_delete;"]


def append_only(*tables: str) -> Callable[[Any, Any], None]:
    def forwards(apps: Any, schema_editor: Any) -> None:
        for table in tables:
            for sql in _statements(schema_editor.connection.vendor, table):
                schema_editor.execute(sql, params=None)

    return forwards


def drop_append_only(*tables: str) -> Callable[[Any, Any], None]:
    def backwards(apps: Any, schema_editor: Any) -> None:
        for table in tables:
            for sql in _drop(schema_editor.connection.vendor, table):
                schema_editor.execute(sql, params=None)

    return backwards
