"""``manage.py notify_send_due``: deliver every due message now (what the every-minute Huey task does).

Releases messages held for quiet hours whose hours are over, retries failed attempts whose backoff has
passed, and sends queued messages whose task was lost. ``--now 2026-12-01T09:30`` or ``--date 2026-12-01``
(that day at 12:00 in ``TIME_ZONE``) simulate another moment.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from meiye.core.progress import Progress
from meiye.notify.services import notify_send_due


class Command(BaseCommand):
    help = "Deliver due notification messages: quiet-hour holds that are over, retries whose backoff passed."

    def add_arguments(self, parser: CommandParser) -> None:
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--date", help="simulate this day (YYYY-MM-DD), at 12:00 local time")
        group.add_argument(
            "--now", help="simulate this moment (YYYY-MM-DDTHH:MM, local time unless an offset is given)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        now = self._moment(options.get("date"), options.get("now"))
        counts = notify_send_due(now=now, progress=lambda total: Progress(total, "发送通知 Sending messages"))
        summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k != "due")
        self.stdout.write(
            self.style.SUCCESS(f"notify_send_due: {counts['due']} due" + (f" ({summary})" if summary else ""))
        )

    @staticmethod
    def _moment(day: str | None, moment: str | None) -> datetime | None:
        zone = ZoneInfo(settings.TIME_ZONE)
        try:
            if day:
                return datetime.combine(date.fromisoformat(day), time(12, 0), tzinfo=zone)
            if moment:
                parsed = datetime.fromisoformat(moment)
                return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=zone)
        except ValueError as exc:
            raise CommandError(f"not a date or moment: {exc}") from None
        return None
