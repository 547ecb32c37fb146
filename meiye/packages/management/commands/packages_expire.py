"""``manage.py packages_expire``: the nightly expiry of package items, item by item, set-based in batches.

The same service as the daily Huey task (``packages.tasks.packages_expire_task``). ``--date 2027-01-10``
simulates another day (the job of 2027-01-10 expires items valid until 2027-01-09); a second run the same
day expires nothing more, and a run that stopped half-way resumes where it stopped.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from meiye.core.progress import Progress
from meiye.loyalty.selectors import local_today
from meiye.org.models import Organisation
from meiye.packages.services import EXPIRY_BATCH, packages_expire_due, packages_expiry_items


class Command(BaseCommand):
    help = "Expire the package sessions due today (one journal per item); --date YYYY-MM-DD simulates a day."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", help="the day (YYYY-MM-DD); default: today in TIME_ZONE")
        parser.add_argument("--batch", type=int, default=EXPIRY_BATCH, help="items per transaction")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            day = date.fromisoformat(options["date"]) if options.get("date") else local_today(None)
        except ValueError as exc:
            raise CommandError(f"--date: not a date (YYYY-MM-DD): {exc}") from None
        if options["batch"] < 1:
            raise CommandError("--batch: must be at least 1")
        for organisation in Organisation.objects.order_by("pk"):
            due = packages_expiry_items(on=day, organisation_id=organisation.pk)
            bar = Progress(len(due), f"次卡过期 Package expiry {organisation.code}")
            skipped: list[int] = []
            sessions = packages_expire_due(
                on=day,
                organisation_id=organisation.pk,
                item_ids=due,
                batch_size=options["batch"],
                progress=bar.advance,
                skipped=skipped,
            )
            bar.finish()
            self.stdout.write(
                self.style.SUCCESS(
                    f"packages_expire {organisation.code} {day.isoformat()}: {sessions} sessions of "
                    f"{len(due) - len(skipped)} items"
                )
            )
            if skipped:
                self.stderr.write(
                    f"packages_expire {organisation.code}: {len(skipped)} items out of step with the ledger, "
                    f"not expired: {', '.join(map(str, skipped))} (see packages_verify)"
                )
