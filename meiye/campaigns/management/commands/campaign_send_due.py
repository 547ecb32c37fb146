"""``manage.py campaign_send_due``: send the scheduled campaigns whose time has come (and finish a run that
stopped half-way). The same service as the Huey task (``campaigns.tasks.campaign_send_due_task``); a second
run sends nothing more. ``--now 2026-11-24T10:00`` or ``--date 2026-11-24`` (end of that day) simulates a time.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from meiye.campaigns.models import CampaignStatus
from meiye.campaigns.segments import segment_count
from meiye.campaigns.services import campaign_pending, campaign_send, campaigns_due
from meiye.core.progress import Progress
from meiye.org.context import Actor
from meiye.org.models import Organisation


def _moment(options: dict[str, Any]) -> datetime:
    try:
        if options.get("now"):
            moment = datetime.fromisoformat(options["now"])
            return moment if timezone.is_aware(moment) else timezone.make_aware(moment)
        if options.get("date"):
            day = date.fromisoformat(options["date"])
            return timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min)) - timedelta(microseconds=1)
    except ValueError as exc:
        raise CommandError(f"--now/--date: not a date or time: {exc}") from None
    return timezone.now()


class Command(BaseCommand):
    help = "Send due campaigns; --now YYYY-MM-DDTHH:MM or --date YYYY-MM-DD simulates a time."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", help="the day (YYYY-MM-DD): campaigns due by the end of it")
        parser.add_argument("--now", help="the moment (ISO 8601); default: now")

    def handle(self, *args: Any, **options: Any) -> None:
        now = _moment(options)
        for organisation in Organisation.objects.order_by("pk"):
            actor = Actor.system(organisation)
            for campaign in campaigns_due(organisation_id=organisation.pk, now=now):
                if campaign.status == CampaignStatus.SCHEDULED:
                    size = segment_count(actor=actor, criteria=campaign.segment.criteria, now=now)
                else:
                    size = len(campaign_pending(campaign))
                bar = Progress(size, f"营销活动 Campaign {campaign.pk}")
                result = campaign_send(actor=actor, campaign=campaign, now=now, progress=bar.advance)
                bar.finish()
                self.stdout.write(
                    self.style.SUCCESS(
                        f"campaign_send_due {organisation.code} #{campaign.pk}: {result.targets} targets, "
                        f"{result.holdout} holdout, {result.rewarded_now} rewarded, {result.pending} pending"
                    )
                )
