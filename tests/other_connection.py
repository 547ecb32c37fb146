"""What another database connection sees: the rows a test's transaction has committed, not its own view."""

from __future__ import annotations

from typing import Any

from django.db import connections


def committed_values(model: Any, column: str, values: list[str]) -> set[str]:
    """Which of ``values`` of ``model``'s ``column`` a fresh connection finds (transactional tests only)."""
    other = connections.create_connection("default")
    table, qn = model._meta.db_table, other.ops.quote_name
    try:
        with other.cursor() as cursor:
            cursor.execute(
                f"SELECT {qn(column)} FROM {qn(table)} WHERE {qn(column)} IN ({', '.join(['%s'] * len(values))})",  # noqa: S608
                values,
            )
            return {row[0] for row in cursor.fetchall()}
    finally:
        other.close()
