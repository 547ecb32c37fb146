"""The reference tier ladder of shared/SCENARIOS.md, built through the services, and helpers for tier tests.

| tier | from growth | service discount | points × | points per 1 元 offset | lifetime |
| 普通会员 Regular | 0 | none | 1.0 | 100 | 12 months |
| 银卡 Silver | 3,000 | 10% | 1.0 | 100 | 12 months |
| 金卡 Gold | 10,000 | 15% | 1.2 | 90 | 12 months |
| 钻石 Diamond | 30,000 | 20% | 1.5 | 80 | 24 months |
"""

from __future__ import annotations

import uuid
from datetime import date

from django.test.utils import CaptureQueriesContext

from meiye.core.money import Money
from meiye.ledger.models import Balance
from meiye.loyalty.models import MemberTier, Tier
from meiye.loyalty.selectors import member_growth_account
from meiye.loyalty.tiers import tier_grant, tier_save
from meiye.members.models import Member
from meiye.org.context import Actor
from meiye.sales.models import Bill
from meiye.sales.services import LineInput, TenderInput, bill_checkout

# code, name_zh, name_en, threshold, discounts (bp), multiplier (bp), offset rate, lifetime (months)
REFERENCE_TIERS: list[tuple[str, str, str, str, dict[str, int], int, int, int]] = [
    ("regular", "普通会员", "Regular", "0", {}, 10_000, 100, 12),
    ("silver", "银卡", "Silver", "3000", {"service": 1_000}, 10_000, 100, 12),
    ("gold", "金卡", "Gold", "10000", {"service": 1_500}, 12_000, 90, 12),
    ("diamond", "钻石", "Diamond", "30000", {"service": 2_000}, 15_000, 80, 24),
]


def reference_tiers(actor: Actor) -> dict[str, Tier]:
    """Create the reference ladder (needs ``catalog.manage``: an HQ admin)."""
    return {
        code: tier_save(
            actor=actor,
            code=code,
            name_zh=name_zh,
            name_en=name_en,
            threshold=Money.parse(threshold),
            discounts_bp=discounts,
            points_multiplier_bp=multiplier,
            points_per_yuan_offset=offset,
            points_lifetime_months=lifetime,
            perks_zh=f"{name_zh}权益",
            perks_en=f"{name_en} perks",
        )
        for code, name_zh, name_en, threshold, discounts, multiplier, offset, lifetime in REFERENCE_TIERS
    }


def grant(actor: Actor, member: Member, tier: Tier, until: date = date(2099, 12, 31)) -> None:
    """Put a member on ``tier`` by hand (a floor until ``until``; needs ``money.adjust``)."""
    tier_grant(actor=actor, member=member, tier=tier, until=until, reason="测试 test set-up")


def cash_bill(actor: Actor, member: Member, item, amount: str, quantity: int = 1) -> Bill:
    """A one-shot checkout of ``quantity`` × ``item`` paid ``amount`` in cash, with a fresh key."""
    return bill_checkout(
        actor=actor,
        member=member,
        lines=[LineInput(item_id=item.pk, quantity=quantity)],
        tenders=[TenderInput(kind="cash", amount=Money.parse(amount))],
        idempotency_key=uuid.uuid4().hex,
    )


def earned_tier_code(member: Member) -> str | None:
    """The code of the tier her growth earned (None: no state row yet, so the lowest)."""
    state = MemberTier.objects.filter(member=member).select_related("earned_tier").first()
    return state.earned_tier.code if state is not None else None


def upgrade_reads(ctx: CaptureQueriesContext) -> int:
    """The upgrade check's own reads of her earned tier and growth (the checkout's store read, which carries the
    same numbers, left out)."""
    return sum(
        1
        for q in ctx.captured_queries
        if "earned_tier_id" in q["sql"]
        and "ledger_entry" in q["sql"]
        and not q["sql"].lstrip().startswith('SELECT "org_store"."id"')
    )


def growth_version(member: Member) -> int:
    """The version of her growth balance row (she has a growth account)."""
    account = member_growth_account(member)
    assert account is not None
    return Balance.objects.get(account=account).version
