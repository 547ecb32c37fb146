"""Huey periodic tasks of the wallet app; each calls the same service as its management command."""

from __future__ import annotations

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from meiye.loyalty.selectors import local_today
from meiye.org.models import Organisation
from meiye.wallet.services import wallet_bonus_release_due

logger = logging.getLogger(__name__)


@db_periodic_task(crontab(hour="6", minute="0"))
def wallet_bonus_release_task() -> None:
    """Daily at 06:00 (before the stores open): release the bonus instalments due (``manage.py
    wallet_bonus_release``). One organisation's failure is logged and does not stop the others (the service
    already goes on past a failing batch); what failed stays pending for the next run."""
    today = local_today(None)
    for organisation_id in Organisation.objects.order_by("pk").values_list("pk", flat=True):
        try:
            wallet_bonus_release_due(on=today, organisation_id=organisation_id)
        except Exception:
            logger.exception("wallet.bonus_release: organisation %s failed on %s", organisation_id, today.isoformat())
