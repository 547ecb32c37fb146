"""Huey periodic tasks of the wallet app; each calls the same service as its management command."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from meiye.loyalty.selectors import local_today
from meiye.org.models import Organisation
from meiye.wallet.services import wallet_bonus_release_due


@db_periodic_task(crontab(hour="6", minute="0"))
def wallet_bonus_release_task() -> None:
    """Daily at 06:00 (before the stores open): release the bonus instalments due (``manage.py
    wallet_bonus_release``)."""
    today = local_today(None)
    for organisation in Organisation.objects.order_by("pk"):
        wallet_bonus_release_due(on=today, organisation_id=organisation.pk)
