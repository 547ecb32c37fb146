"""Messages a completed bill sends to its member, queued once the bill has committed.

- S-17: every stored-value charge tells the member the amount and her new balance (``wallet.charge``);
- the points the bill earned and her points balance (``points.earned``).

They are not written in the checkout's transaction: the checkout is the hot path and storing a message costs
about ten queries (settings, preferences, opt-outs, template, the message and its log). The checkout passes
what the messages say — the charge and the balance right after it — to one Huey task through
``transaction.on_commit``, so a rolled-back bill sends nothing, and the task stores and sends the messages
once per bill (their keys name the bill) even when Huey retries it.
"""

from __future__ import annotations

import contextlib

from huey.contrib.djhuey import db_task

from meiye.core.errors import ApplicationError
from meiye.loyalty.selectors import points_balance
from meiye.notify.events import POINTS_EARNED, WALLET_CHARGE
from meiye.notify.services import notify_event
from meiye.sales.models import Bill


@db_task(retries=3, retry_delay=60)
def bill_notify_member(bill_id: int, charge: tuple[int, int] | None) -> None:
    """``charge``: (amount charged to stored value, stored-value balance after it) in fen, or None."""
    bill = Bill.objects.select_related("member", "store").filter(pk=bill_id).first()
    if bill is None or bill.member is None:
        return
    member = bill.member
    if charge is not None:
        amount_fen, balance_fen = charge
        with contextlib.suppress(ApplicationError):
            notify_event(
                organisation_id=bill.organisation_id,
                member=member,
                event=WALLET_CHARGE,
                context={"amount_fen": amount_fen, "balance_fen": balance_fen},
                idempotency_key=f"{WALLET_CHARGE}:bill:{bill.pk}",
                store=bill.store,
            )
    if bill.points_earned > 0:
        with contextlib.suppress(ApplicationError):
            notify_event(
                organisation_id=bill.organisation_id,
                member=member,
                event=POINTS_EARNED,
                context={"points": bill.points_earned, "points_balance": points_balance(member)},
                idempotency_key=f"{POINTS_EARNED}:{bill.pk}",
                store=bill.store,
            )
