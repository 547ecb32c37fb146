"""``manage.py ledger_fold``: add the shared accounts' pending balance deltas to their balance rows now.

Huey runs the same service every minute (``ledger.tasks``); the command is for an operator, a script or a
backup that wants the balance rows folded first. Balances read through the ledger are right either way.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from meiye.ledger.services import balances_fold


class Command(BaseCommand):
    help = "Fold the shared accounts' pending balance deltas into their balance rows (ADR 0009)."

    def handle(self, *args: Any, **options: Any) -> None:
        folded = balances_fold()
        self.stdout.write(self.style.SUCCESS(f"ledger_fold: {folded} account(s) folded"))
