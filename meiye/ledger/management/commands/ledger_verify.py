"""``manage.py ledger_verify``: the nightly consistency check of the ledger.

Exits 0 when every invariant holds; otherwise prints each problem and exits 1, so a scheduler or
monitoring job notices.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from meiye.ledger.verification import ledger_report


class Command(BaseCommand):
    help = (
        "Recompute every ledger balance from its entries and check every journal (nets to zero per asset, "
        "no zero entry, no forbidden negative balance, reversals mirror their originals)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report = ledger_report()
        self.stdout.write(
            f"ledger: {report.accounts} accounts, {report.journals} journals "
            f"({report.reversals} reversals), {report.entries} entries checked"
        )
        for problem in report.problems:
            self.stdout.write(self.style.ERROR(f"  {problem}"))
        if report.problems:
            raise CommandError(f"ledger_verify: {len(report.problems)} problem(s) found")
        self.stdout.write(self.style.SUCCESS("ledger_verify: no problems found"))
