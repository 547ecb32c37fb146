"""Huey periodic tasks of the loyalty app; each calls the same service as its management command."""

from __future__ import annotations

from datetime import timedelta

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from meiye.loyalty.rules import birthday_gifts_give, dormant_wake, earning_flags_raise
from meiye.loyalty.selectors import local_today
from meiye.loyalty.services import points_expire_due, points_expiry_remind
from meiye.loyalty.tiers import tier_review_due
from meiye.org.context import Actor
from meiye.org.models import Organisation


@db_periodic_task(crontab(hour="2", minute="30"))
def tier_review_task() -> None:
    """Nightly at 02:30: the tier review of the day (``manage.py tier_review``)."""
    today = local_today(None)
    for organisation in Organisation.objects.order_by("pk"):
        tier_review_due(actor=Actor.system(organisation), today=today)


@db_periodic_task(crontab(hour="7", minute="0"))
def loyalty_birthdays_task() -> None:
    """Daily at 07:00: the birthday gifts of the day (``manage.py loyalty_birthdays``)."""
    today = local_today(None)
    for organisation in Organisation.objects.order_by("pk"):
        birthday_gifts_give(actor=Actor.system(organisation), on=today)


@db_periodic_task(crontab(hour="3", minute="0"))
def loyalty_dormant_task() -> None:
    """Nightly at 03:00: the wake-up rewards of dormant members (``manage.py loyalty_dormant``)."""
    today = local_today(None)
    for organisation in Organisation.objects.order_by("pk"):
        dormant_wake(actor=Actor.system(organisation), on=today)


@db_periodic_task(crontab(hour="3", minute="30"))
def loyalty_earning_flags_task() -> None:
    """Nightly at 03:30: flag members who earned more than the daily limit yesterday, for review."""
    yesterday = local_today(None) - timedelta(days=1)
    for organisation in Organisation.objects.order_by("pk"):
        earning_flags_raise(actor=Actor.system(organisation), on=yesterday)


@db_periodic_task(crontab(hour="1", minute="30"))
def points_expire_task() -> None:
    """Nightly at 01:30: expire the points lots due today (``manage.py points_expire``)."""
    today = local_today(None)
    for organisation in Organisation.objects.order_by("pk"):
        points_expire_due(actor=Actor.system(organisation), today=today)


@db_periodic_task(crontab(hour="10", minute="0"))
def points_expiry_remind_task() -> None:
    """Daily at 10:00 (a waking hour): remind members of points expiring soon (``manage.py points_expiry_remind``)."""
    today = local_today(None)
    for organisation in Organisation.objects.order_by("pk"):
        points_expiry_remind(actor=Actor.system(organisation), today=today)
