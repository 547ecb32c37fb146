"""``manage.py loyalty_dormant``: the wake-up reward of members with no visit for the configured days (S-12).

The same service as the daily Huey task (``loyalty.tasks.loyalty_dormant_task``): once per dormant spell;
a second run the same day gives nothing more. ``--date 2026-11-24`` simulates another day.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from meiye.core.progress import Progress
from meiye.loyalty.rules import dormant_due, dormant_wake
from meiye.loyalty.selectors import local_today
from meiye.org.context import Actor
from meiye.org.models import Organisation


class Command(BaseCommand):
    help = "Wake dormant members (points and a voucher, once per spell); --date YYYY-MM-DD simulates a day."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", help="the day (YYYY-MM-DD); default: today in TIME_ZONE")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            day = date.fromisoformat(options["date"]) if options.get("date") else local_today(None)
        except ValueError as exc:
            raise CommandError(f"--date: not a date (YYYY-MM-DD): {exc}") from None
        for organisation in Organisation.objects.order_by("pk"):
            actor = Actor.system(organisation)
            due = dormant_due(actor=actor, on=day)
            bar = Progress(len(due), f"沉睡唤醒 Dormant wake-up {organisation.code}")
            woken = dormant_wake(actor=actor, on=day, due=due, progress=bar.advance)
            bar.finish()
            self.stdout.write(
                self.style.SUCCESS(f"loyalty_dormant {organisation.code} {day.isoformat()}: {woken} woken")
            )
