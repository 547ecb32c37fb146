"""``manage.py tier_review``: the yearly tier review of every member whose review day has come.

The same service as the nightly Huey task (``loyalty.tasks.tier_review_task``): on the anniversary of the
day a member earned her tier, her 12-month growth decides it again (it may fall, S-09); a tier granted by
hand ends the day after its end date. Idempotent: a second run the same day changes nothing.
``--date 2027-11-24`` simulates another day.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from meiye.core.progress import Progress
from meiye.loyalty.selectors import local_today, tier_reviews_due
from meiye.loyalty.tiers import tier_review_due
from meiye.org.context import Actor
from meiye.org.models import Organisation


class Command(BaseCommand):
    help = "Review member tiers due today (anniversaries, grants that ended); --date YYYY-MM-DD simulates a day."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", help="the day to review (YYYY-MM-DD); default: today in TIME_ZONE")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            day = date.fromisoformat(options["date"]) if options.get("date") else local_today(None)
        except ValueError as exc:
            raise CommandError(f"--date: not a date (YYYY-MM-DD): {exc}") from None
        for organisation in Organisation.objects.order_by("pk"):
            due = tier_reviews_due(organisation_id=organisation.pk, today=day)
            bar = Progress(len(due), f"等级复核 Tier review {organisation.code}")
            result = tier_review_due(actor=Actor.system(organisation), today=day, member_ids=due, progress=bar.advance)
            bar.finish()
            self.stdout.write(
                self.style.SUCCESS(
                    f"tier_review {organisation.code} {day.isoformat()}: {result.reviewed} reviewed, "
                    f"{result.lowered} lowered, {result.raised} raised"
                )
            )
