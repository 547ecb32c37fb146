"""``manage.py idempotency_purge``: delete the idempotency records older than the retention period.

The same service as the daily Huey task (``core.tasks.idempotency_purge_task``): records created before
00:00 (``TIME_ZONE``) of the day ``MEIYE_IDEMPOTENCY_RETENTION_DAYS`` (default 30) days ago are deleted, in
batches. ``--date 2027-01-31`` simulates the run of another day; ``--dry-run`` only counts. Safe to run
again at any time: what is already gone is not counted twice.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from meiye.core.idempotency import PURGE_BATCH, idempotency_cutoff, idempotency_purge
from meiye.core.models import IdempotencyRecord
from meiye.core.progress import Progress


class Command(BaseCommand):
    help = (
        "Delete idempotency records older than MEIYE_IDEMPOTENCY_RETENTION_DAYS; "
        "--date YYYY-MM-DD simulates a day, --dry-run only counts."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", help="the day of the run (YYYY-MM-DD); default: today in TIME_ZONE")
        parser.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")
        parser.add_argument("--batch-size", type=int, default=PURGE_BATCH, help="records per transaction")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            day = date.fromisoformat(options["date"]) if options.get("date") else timezone.localdate()
        except ValueError as exc:
            raise CommandError(f"--date: not a date (YYYY-MM-DD): {exc}") from None
        if options["batch_size"] < 1:
            raise CommandError("--batch-size: at least 1")
        dry_run = bool(options["dry_run"])
        try:
            cutoff = idempotency_cutoff(today=day)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        bar = Progress(
            0 if dry_run else IdempotencyRecord.objects.filter(created_at__lt=cutoff).count(),
            "幂等记录清理 Idempotency purge",
        )
        result = idempotency_purge(today=day, dry_run=dry_run, batch_size=options["batch_size"], progress=bar.advance)
        bar.finish()
        verb = "would be deleted (dry run)" if result.dry_run else "deleted"
        self.stdout.write(
            self.style.SUCCESS(
                f"idempotency_purge {day.isoformat()}: {result.deleted if not dry_run else result.matched} "
                f"record(s) created before {timezone.localtime(result.cutoff).isoformat()} {verb}"
            )
        )
