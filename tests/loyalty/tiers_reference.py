"""The reference tier ladder of shared/SCENARIOS.md, built through the services, and helpers for tier tests.

| tier | from growth | service discount | points × | points per 1 元 offset | lifetime |
| 普通会员 Regular | 0 | none | 1.0 | 100 | 12 months |
| 银卡 Silver | 3,000 | 10% | 1.0 | 100 | 12 months |
| 金卡 Gold | 10,000 | 15% | 1.2 | 90 | 12 months |
| 钻石 Diamond | 30,000 | 20% | 1.5 | 80 | 24 months |
"""

from __future__ import annotations

from datetime import date

from meiye.core.money import Money
from meiye.loyalty.models import Tier
from meiye.loyalty.tiers import tier_grant, tier_save
from meiye.members.models import Member
from meiye.org.context import Actor

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
