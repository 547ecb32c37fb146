"""Huey periodic tasks of the packages app; each calls the same service as its management command."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from meiye.loyalty.selectors import local_today
from meiye.org.models import Organisation
from meiye.packages.services import packages_expire_due, packages_expiry_remind


@db_periodic_task(crontab(hour="1", minute="45"))
def packages_expire_task() -> None:
    """Nightly at 01:45: expire the package items due today (``manage.py packages_expire``)."""
    today = local_today(None)
    for organisation in Organisation.objects.order_by("pk"):
        packages_expire_due(on=today, organisation_id=organisation.pk)


@db_periodic_task(crontab(hour="10", minute="15"))
def packages_expiry_remind_task() -> None:
    """Daily at 10:15: remind members whose package items expire in 7 days (event ``package.expiring``)."""
    today = local_today(None)
    for organisation in Organisation.objects.order_by("pk"):
        packages_expiry_remind(on=today, organisation_id=organisation.pk)
