"""``manage.py wallet_bonus_release``: the daily release of recharge-rule bonus instalments (S-13).

The same service as the daily Huey task (``wallet.tasks.wallet_bonus_release_task``). ``--date 2026-02-15``
simulates another day (it releases every part due on or before it); a second run releases nothing more, and
a run that stopped half-way resumes where it stopped.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from meiye.core.progress import Progress
from meiye.loyalty.selectors import local_today
from meiye.org.models import Organisation
from meiye.wallet.selectors import instalments_due_count
from meiye.wallet.services import RELEASE_BATCH, wallet_bonus_release_due


class Command(BaseCommand):
    help = "Release the recharge-bonus instalments due (one journal each); --date YYYY-MM-DD simulates a day."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", help="the day (YYYY-MM-DD); default: today in TIME_ZONE")
        parser.add_argument("--batch", type=int, default=RELEASE_BATCH, help="instalments per transaction")
        parser.add_argument("--no-notify", action="store_true", help="do not tell the members")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            day = date.fromisoformat(options["date"]) if options.get("date") else local_today(None)
        except ValueError as exc:
            raise CommandError(f"--date: not a date (YYYY-MM-DD): {exc}") from None
        if options["batch"] < 1:
            raise CommandError("--batch: must be at least 1")
        for organisation in Organisation.objects.order_by("pk"):
            due = instalments_due_count(on=day, organisation_id=organisation.pk)
            bar = Progress(due, f"赠送金分期到账 Bonus instalments {organisation.code}")
            released = wallet_bonus_release_due(
                on=day,
                organisation_id=organisation.pk,
                batch_size=options["batch"],
                progress=bar.advance,
                notify=not options["no_notify"],
            )
            bar.finish()
            self.stdout.write(
                self.style.SUCCESS(
                    f"wallet_bonus_release {organisation.code} {day.isoformat()}: {released} of {due} instalments"
                )
            )
