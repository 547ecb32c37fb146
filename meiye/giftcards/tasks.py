"""Huey periodic tasks of the gift-card app; each calls the same service as its management command."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from meiye.giftcards.services import gift_cards_expire_due
from meiye.loyalty.selectors import local_today
from meiye.org.models import Organisation


@db_periodic_task(crontab(hour="1", minute="15"))
def gift_cards_expire_task() -> None:
    """Nightly at 01:15: expire the gift cards past their last day (``manage.py gift_cards_expire``)."""
    today = local_today(None)
    for organisation in Organisation.objects.order_by("pk"):
        gift_cards_expire_due(on=today, organisation_id=organisation.pk)
