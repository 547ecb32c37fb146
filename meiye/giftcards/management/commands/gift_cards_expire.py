"""``manage.py gift_cards_expire``: the daily expiry of gift cards, set-based, in batches of cards.

The same service as the daily Huey task (``giftcards.tasks.gift_cards_expire_task``). ``--date 2026-12-01``
simulates another day (the job of 2026-12-01 expires cards valid until 2026-11-30); a second run the same day
moves nothing more.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from meiye.core.money import Money
from meiye.core.progress import Progress
from meiye.giftcards.services import EXPIRY_BATCH, gift_cards_expire_due, gift_cards_expiry_count
from meiye.loyalty.selectors import local_today
from meiye.org.models import Organisation


class Command(BaseCommand):
    help = (
        "Expire the gift cards past their last day; what is left goes to breakage. --date YYYY-MM-DD simulates a day."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", help="the day (YYYY-MM-DD); default: today in TIME_ZONE")
        parser.add_argument("--batch", type=int, default=EXPIRY_BATCH, help="cards per transaction")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            day = date.fromisoformat(options["date"]) if options.get("date") else local_today(None)
        except ValueError as exc:
            raise CommandError(f"--date: not a date (YYYY-MM-DD): {exc}") from None
        if options["batch"] < 1:
            raise CommandError("--batch: must be at least 1")
        for organisation in Organisation.objects.order_by("pk"):
            due = gift_cards_expiry_count(on=day, organisation_id=organisation.pk)
            bar = Progress(due, f"礼品卡过期 Gift-card expiry {organisation.code}")
            moved = gift_cards_expire_due(
                on=day, organisation_id=organisation.pk, batch_size=options["batch"], progress=bar.advance
            )
            bar.finish()
            self.stdout.write(
                self.style.SUCCESS(
                    f"gift_cards_expire {organisation.code} {day.isoformat()}: {due} cards, "
                    f"{Money(moved).as_decimal_string()} to breakage"
                )
            )
