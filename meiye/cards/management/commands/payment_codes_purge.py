"""``manage.py payment_codes_purge``: wipe the encrypted copy of expired one-time codes and delete codes more
than 30 days old. The same service as the hourly Huey task (``cards.tasks.payment_codes_purge_task``);
``--date 2026-12-01`` simulates another day; a second run changes nothing."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from meiye.cards.services import payment_codes_purge_due
from meiye.core.progress import Progress
from meiye.org.models import Organisation


class Command(BaseCommand):
    help = "Wipe expired one-time payment codes and delete those older than 30 days; --date YYYY-MM-DD."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", help="the day (YYYY-MM-DD); default: today in TIME_ZONE")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            day = date.fromisoformat(options["date"]) if options.get("date") else timezone.localdate()
        except ValueError as exc:
            raise CommandError(f"--date: not a date (YYYY-MM-DD): {exc}") from None
        organisations = list(Organisation.objects.order_by("pk").values_list("pk", "code"))
        bar = Progress(len(organisations), "支付验证码清理 Payment codes purge")
        total = 0
        for pk, _code in organisations:
            total += payment_codes_purge_due(on=day, organisation_id=pk)
            bar.advance()
        bar.finish()
        self.stdout.write(self.style.SUCCESS(f"payment_codes_purge {day.isoformat()}: {total} codes wiped or deleted"))
