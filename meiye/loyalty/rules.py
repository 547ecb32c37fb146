"""Event rewards and earning rules beyond the base rate and the tier (issue 4 section 2).

Seams that sales calls (placeholders until the rules land):

- ``rewards_after_bill(actor=, member=, bill_id=, earning_fen=, services_fen=, on=)`` — inside the checkout's
  transaction once the bill has posted (after ``tiers.tier_after_bill``): event rewards that a completed bill
  triggers, such as the referral rewards of S-10 on the referred member's first paid service. It must cost
  no query for a member without a referrer (the checkout is pinned at 20 queries).
- ``rewards_reverse_for_bill(actor=, member=, bill_id=, completed_on=, on=, is_full=)`` — inside a refund's
  transaction: a full refund within 7 days reverses the rewards that bill triggered (S-10).
"""

from __future__ import annotations

from datetime import date

from meiye.members.models import Member
from meiye.org.context import Actor


def rewards_after_bill(
    *, actor: Actor, member: Member, bill_id: int, earning_fen: int, services_fen: int, on: date
) -> None:
    return None


def rewards_reverse_for_bill(
    *, actor: Actor, member: Member, bill_id: int, completed_on: date, on: date, is_full: bool
) -> None:
    return None
