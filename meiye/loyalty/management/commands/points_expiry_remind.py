"""``manage.py points_expiry_remind``: tell members whose points expire soon (S-08), once per expiry date.

The same service as the daily Huey task (``loyalty.tasks.points_expiry_remind_task``). The lead time is the
organisation's ``expiry_reminder_days`` (default 31; 0: no reminder). ``--date 2026-08-01`` simulates a day.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from meiye.core.progress import Progress
from meiye.loyalty.selectors import local_today, points_expiry_reminders_due
from meiye.loyalty.services import points_expiry_remind
from meiye.org.context import Actor
from meiye.org.models import Organisation


class Command(BaseCommand):
    help = "Remind members of points expiring soon (once per expiry date); --date YYYY-MM-DD simulates a day."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", help="the day (YYYY-MM-DD); default: today in TIME_ZONE")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            day = date.fromisoformat(options["date"]) if options.get("date") else local_today(None)
        except ValueError as exc:
            raise CommandError(f"--date: not a date (YYYY-MM-DD): {exc}") from None
        for organisation in Organisation.objects.order_by("pk"):
            due = points_expiry_reminders_due(organisation_id=organisation.pk, today=day)
            bar = Progress(len(due), f"到期提醒 Expiry reminders {organisation.code}")
            told = points_expiry_remind(actor=Actor.system(organisation), today=day, due=due, progress=bar.advance)
            bar.finish()
            self.stdout.write(
                self.style.SUCCESS(f"points_expiry_remind {organisation.code} {day.isoformat()}: {told} told")
            )
