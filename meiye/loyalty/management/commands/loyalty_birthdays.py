"""``manage.py loyalty_birthdays``: the birthday gift of the day (S-04), once a year per member.

The same service as the daily Huey task (``loyalty.tasks.loyalty_birthdays_task``). ``--date 2026-11-05``
simulates another day; a second run the same day gives nothing more.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from meiye.core.progress import Progress
from meiye.loyalty.rules import birthday_gifts_give, birthdays_due
from meiye.loyalty.selectors import local_today
from meiye.org.context import Actor
from meiye.org.models import Organisation


class Command(BaseCommand):
    help = "Give today's birthday gifts (once a year); --date YYYY-MM-DD simulates a day."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", help="the day (YYYY-MM-DD); default: today in TIME_ZONE")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            day = date.fromisoformat(options["date"]) if options.get("date") else local_today(None)
        except ValueError as exc:
            raise CommandError(f"--date: not a date (YYYY-MM-DD): {exc}") from None
        for organisation in Organisation.objects.order_by("pk"):
            due = birthdays_due(organisation_id=organisation.pk, on=day)
            bar = Progress(len(due), f"生日礼 Birthday gifts {organisation.code}")
            given = birthday_gifts_give(actor=Actor.system(organisation), on=day, member_ids=due, progress=bar.advance)
            bar.finish()
            self.stdout.write(
                self.style.SUCCESS(f"loyalty_birthdays {organisation.code} {day.isoformat()}: {given} given")
            )
