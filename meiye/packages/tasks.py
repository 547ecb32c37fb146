"""Huey periodic tasks of the packages app; each calls the same service as its management command.

Each organisation is run on its own: an exception in one is logged and the others still run."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from meiye.loyalty.selectors import local_today
from meiye.org.models import Organisation
from meiye.packages.services import packages_expire_due, packages_expiry_remind

logger = logging.getLogger(__name__)


def for_each_organisation(job: str, run: Callable[..., int], on: date) -> dict[int, int | None]:
    """``run(on=on, organisation_id=…)`` for every organisation, each guarded: an exception is logged (with the
    organisation) and the next one runs. Returns each organisation's result, None where it failed."""
    results: dict[int, int | None] = {}
    for organisation_id in Organisation.objects.order_by("pk").values_list("pk", flat=True):
        try:
            results[organisation_id] = run(on=on, organisation_id=organisation_id)
        except Exception:
            logger.exception("%s failed for organisation %s on %s", job, organisation_id, on.isoformat())
            results[organisation_id] = None
    return results


@db_periodic_task(crontab(hour="1", minute="45"))
def packages_expire_task() -> None:
    """Nightly at 01:45: expire the package items due today (``manage.py packages_expire``)."""
    for_each_organisation("packages_expire", packages_expire_due, local_today(None))


@db_periodic_task(crontab(hour="10", minute="15"))
def packages_expiry_remind_task() -> None:
    """Daily at 10:15: remind members whose package items expire in 7 days (event ``package.expiring``)."""
    for_each_organisation("packages_expiry_remind", packages_expiry_remind, local_today(None))
