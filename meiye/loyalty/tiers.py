"""Member tiers (普通/银卡/金卡/钻石): what a checkout asks of them.

Placeholder seams for the loyalty issue; sales calls these two functions:

- ``member_tier_info(member)`` — merged into the bill's member snapshot when the bill is priced; the
  pricing and earning steps read it from ``ctx.member_info`` (tier code and name, discounts, points
  multiplier, points-offset rate, points lifetime).
- ``tier_after_bill(actor=, member=, on=)`` — called inside the checkout's transaction after the bill's
  growth value was posted, so a bill that crosses a threshold upgrades the member at once (S-09).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from meiye.members.models import Member
from meiye.org.context import Actor


def member_tier_info(member: Member) -> dict[str, Any]:
    """The member's tier and its rules, as plain JSON-able values. Empty until tiers exist."""
    return {}


def tier_after_bill(*, actor: Actor, member: Member, on: date) -> None:
    """Upgrade the member at once if her growth value now reaches a higher tier. No-op until tiers exist."""
    return None
