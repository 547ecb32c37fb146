"""``manage.py points_expire``: the nightly expiry of points lots (S-08), set-based, in batches of members.

The same service as the daily Huey task (``loyalty.tasks.points_expire_task``). ``--date 2026-09-02``
simulates another day (the job of 2026-09-02 expires lots valid until 2026-09-01); a second run the same day
expires nothing more, and a run that stopped half-way resumes where it stopped.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from meiye.core.progress import Progress
from meiye.loyalty.selectors import local_today, points_expiry_members
from meiye.loyalty.services import EXPIRY_BATCH, points_expire_due
from meiye.org.context import Actor
from meiye.org.models import Organisation


class Command(BaseCommand):
    help = "Expire the points lots due today (one journal per member); --date YYYY-MM-DD simulates a day."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", help="the day (YYYY-MM-DD); default: today in TIME_ZONE")
        parser.add_argument("--batch", type=int, default=EXPIRY_BATCH, help="members per transaction")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            day = date.fromisoformat(options["date"]) if options.get("date") else local_today(None)
        except ValueError as exc:
            raise CommandError(f"--date: not a date (YYYY-MM-DD): {exc}") from None
        if options["batch"] < 1:
            raise CommandError("--batch: must be at least 1")
        for organisation in Organisation.objects.order_by("pk"):
            due = points_expiry_members(organisation_id=organisation.pk, today=day)
            bar = Progress(len(due), f"积分过期 Points expiry {organisation.code}")
            points = points_expire_due(
                actor=Actor.system(organisation),
                today=day,
                member_ids=due,
                batch_size=options["batch"],
                progress=bar.advance,
            )
            bar.finish()
            self.stdout.write(
                self.style.SUCCESS(
                    f"points_expire {organisation.code} {day.isoformat()}: {points} points of {len(due)} members"
                )
            )
