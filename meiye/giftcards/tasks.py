"""Huey periodic tasks of the gift-card app; each calls the same service as its management command.

Each organisation is run on its own: an exception in one is logged and the others still run."""

from __future__ import annotations

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from meiye.giftcards.services import gift_cards_expire_due
from meiye.loyalty.selectors import local_today
from meiye.org.models import Organisation

logger = logging.getLogger(__name__)


@db_periodic_task(crontab(hour="1", minute="15"))
def gift_cards_expire_task() -> None:
    """Nightly at 01:15: expire the gift cards past their last day (``manage.py gift_cards_expire``)."""
    today = local_today(None)
    for organisation_id in Organisation.objects.order_by("pk").values_list("pk", flat=True):
        try:
            gift_cards_expire_due(on=today, organisation_id=organisation_id)
        except Exception:
            logger.exception("gift_cards_expire failed for organisation %s on %s", organisation_id, today.isoformat())
