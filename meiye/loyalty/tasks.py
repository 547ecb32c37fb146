"""Huey periodic tasks of the loyalty app; each calls the same service as its management command."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from meiye.loyalty.selectors import local_today
from meiye.loyalty.tiers import tier_review_due
from meiye.org.context import Actor
from meiye.org.models import Organisation


@db_periodic_task(crontab(hour="2", minute="30"))
def tier_review_task() -> None:
    """Nightly at 02:30: the tier review of the day (``manage.py tier_review``)."""
    today = local_today(None)
    for organisation in Organisation.objects.order_by("pk"):
        tier_review_due(actor=Actor.system(organisation), today=today)
