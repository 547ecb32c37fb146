"""Plain helpers for the ledger tests (fixtures are in conftest.py)."""

from __future__ import annotations

from typing import Any

from django.db import connection

from meiye.ledger.models import Balance, BalanceDelta, Entry, Journal

ORG = 1
OTHER_ORG = 2


def fire_deferred_checks() -> None:
    """Run PostgreSQL's deferred constraint triggers now, as COMMIT would.

    A test wrapped in a transaction that is rolled back never reaches COMMIT, so without this the
    "journal nets to zero" trigger would never run in tests. No-op on SQLite (no deferred triggers).
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def ledger_state() -> dict[str, Any]:
    """Everything a refused operation must leave unchanged."""
    return {
        "journals": Journal.objects.count(),
        "entries": Entry.objects.count(),
        "balances": dict(Balance.objects.values_list("account_id", "amount")),
        "versions": dict(Balance.objects.values_list("account_id", "version")),
        "deltas": sorted(BalanceDelta.objects.values_list("account_id", "amount")),
    }
