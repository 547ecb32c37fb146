"""Huey periodic task of the campaigns app; it calls the same service as ``manage.py campaign_send_due``."""

from __future__ import annotations

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from meiye.campaigns.services import campaigns_send_due
from meiye.org.context import Actor
from meiye.org.models import Organisation


@db_periodic_task(crontab(minute="*/5"))
def campaign_send_due_task() -> None:
    """Every 5 minutes: send the scheduled campaigns whose time has come, and finish any half-sent one."""
    now = timezone.now()
    for organisation in Organisation.objects.order_by("pk"):
        campaigns_send_due(actor=Actor.system(organisation), now=now)
