"""Huey periodic tasks of the core app; each calls the same service as its management command."""

from __future__ import annotations

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from meiye.core.idempotency import idempotency_purge


@db_periodic_task(crontab(hour="3", minute="15"))
def idempotency_purge_task() -> int:
    """Daily at 03:15 by Huey's clock (UTC unless ``HUEY["utc"]`` is False): delete the idempotency records
    past their retention (``manage.py idempotency_purge``). The day is today in ``TIME_ZONE``."""
    return idempotency_purge(today=timezone.localdate()).deleted
