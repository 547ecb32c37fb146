"""Huey periodic tasks of the cards app; each calls the same service as its management command."""

from __future__ import annotations

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from meiye.cards.services import payment_codes_purge_due


@db_periodic_task(crontab(minute="15"))
def payment_codes_purge_task() -> None:
    """Hourly at :15: wipe expired one-time codes, delete old ones (``manage.py payment_codes_purge``)."""
    payment_codes_purge_due(on=timezone.localdate())
