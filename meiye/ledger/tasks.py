"""Huey periodic tasks of the ledger; each calls the same service as its management command."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from meiye.ledger.services import balances_fold


@db_periodic_task(crontab(minute="*"))
def balances_fold_task() -> int:
    """Every minute: add the shared accounts' pending balance deltas to their balance rows
    (``manage.py ledger_fold``, ADR 0009)."""
    return balances_fold()
