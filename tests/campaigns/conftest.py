"""Fixtures for segments and campaigns: a fixed moment in Shanghai, three members with known visits, points,
tiers, tags and coupons, and bills written as plain rows (the selectors only read them)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from meiye.core.money import Money
from meiye.loyalty.services import points_earn
from meiye.loyalty.tiers import tier_save
from meiye.members.models import Member
from meiye.members.services import consent_record
from meiye.org.context import Actor
from meiye.org.models import Staff, Store
from meiye.promotions.models import CouponKind, CouponTemplate
from meiye.promotions.services import CouponTemplateInput, coupon_issue, coupon_template_save
from meiye.sales.models import Bill, BillStatus, Refund, RefundDestination

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=SHANGHAI)
_numbers = itertools.count(1)


@pytest.fixture
def hq(hq_admin: Staff, actor_for: Callable[..., Actor], store1: Store) -> Actor:
    return actor_for(hq_admin, store1)


def add_bill(
    member: Member,
    fen: int,
    at: datetime,
    *,
    store: Store | None = None,
    status: str = BillStatus.COMPLETED,
    refund_fen: int = 0,
) -> Bill:
    """A bill row of ``fen`` completed at ``at`` (and a refund of ``refund_fen`` on it)."""
    n = next(_numbers)
    bill = Bill.objects.create(
        organisation_id=member.organisation_id,
        store=store or member.home_store,
        member=member,
        number=f"T{n:06d}",
        status=status,
        completed_at=at if status == BillStatus.COMPLETED else None,
        payable_total_fen=fen,
        list_total_fen=fen,
    )
    if refund_fen:
        Refund.objects.create(
            organisation_id=member.organisation_id,
            store=bill.store,
            bill=bill,
            destination=RefundDestination.ORIGINAL,
            reason="test",
            amount_fen=refund_fen,
            idempotency_key=f"refund-{n}",
            request_hash="x",
        )
    return bill


@pytest.fixture
def tiers(hq: Actor) -> dict[str, Any]:
    return {
        "regular": tier_save(actor=hq, code="regular", name_zh="普通", threshold=Money(0)),
        "silver": tier_save(actor=hq, code="silver", name_zh="银卡", threshold=Money(300_000)),
    }


@pytest.fixture
def template(hq: Actor) -> CouponTemplate:
    return coupon_template_save(
        actor=hq,
        data=CouponTemplateInput(name="50元代金券", kind=CouponKind.AMOUNT_OFF, amount_off_fen=5_000, valid_days=30),
    )


@pytest.fixture
def other_template(hq: Actor) -> CouponTemplate:
    return coupon_template_save(
        actor=hq,
        data=CouponTemplateInput(name="8折券", kind=CouponKind.PERCENT_OFF, pay_bp=8_000, valid_days=30),
    )


@pytest.fixture
def people(
    make_member: Callable[..., Member],
    store1: Store,
    store2: Store,
    hq: Actor,
    template: CouponTemplate,
    other_template: CouponTemplate,
) -> dict[str, Member]:
    """a: store 1, June birthday, VIP, 100 points, visits 10 and 40 days ago (600.00; 300.00 less 100.00
    refunded), holds the 50元 coupon. b: store 2, July birthday, one visit 100 days ago (1,000.00), holds
    the 8折 coupon. c: store 1, never visited (an open bill does not count), 500 points."""
    a = make_member(store1, name="甲", birthday="1990-06-03", tags=["VIP"])
    b = make_member(store2, name="乙", birthday="1985-07-20", tags=["新客"])
    c = make_member(store1, name="丙")
    add_bill(a, 60_000, NOW - timedelta(days=10))
    add_bill(a, 30_000, NOW - timedelta(days=40), refund_fen=10_000)
    add_bill(b, 100_000, NOW - timedelta(days=100))
    add_bill(c, 50_000, NOW - timedelta(days=5), status=BillStatus.OPEN)
    for member, points in ((a, 100), (c, 500)):
        points_earn(
            actor=hq,
            member=member,
            points=points,
            source_code="test",
            reference_type="test",
            reference_id="t",
            idempotency_key=f"seed-points-{member.pk}",
        )
    coupon_issue(actor=hq, member=a, template=template, source="manual", idempotency_key=f"seed-coupon-{a.pk}")
    coupon_issue(actor=hq, member=b, template=other_template, source="manual", idempotency_key=f"seed-c-{b.pk}")
    return {"a": a, "b": b, "c": c}


@pytest.fixture
def grant_marketing(hq: Actor) -> Callable[[Member], None]:
    def grant(member: Member) -> None:
        consent_record(
            actor=hq, member=member, purpose="marketing_sms", granted=True, text_version="v1", channel="tablet"
        )

    return grant
