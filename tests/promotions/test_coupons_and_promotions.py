"""Coupons and promotions at checkout: S-05 and S-22 (the coupon parts) and S-21."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from meiye.core.errors import ApplicationError
from meiye.core.money import Money
from meiye.ledger.verification import verify_ledger
from meiye.loyalty.services import verify_points_lots
from meiye.promotions.models import Coupon, CouponKind, CouponStatus, PromotionKind, StackingPolicy
from meiye.promotions.offers import OfferLine, evaluate, percent_paid_fen
from meiye.promotions.services import (
    CouponTemplateInput,
    PromotionInput,
    coupon_issue,
    coupon_template_save,
    promotion_save,
    promotion_settings_set,
)
from meiye.sales.models import BillStatus, Tender
from meiye.sales.services import (
    LineInput,
    TenderInput,
    bill_add_line,
    bill_checkout,
    bill_complete,
    bill_open,
    bill_refund,
)
from tests.sales.support import balances, sales_state


def _coupon_50_off(hq, **extra) -> object:
    return coupon_template_save(
        actor=hq,
        data=CouponTemplateInput(
            name="50元代金券", kind=CouponKind.AMOUNT_OFF, amount_off_fen=5_000, valid_days=30, **extra
        ),
    )


@pytest.fixture
def s05_coupon(hq, cashier, s05_member) -> Coupon:
    return coupon_issue(
        actor=cashier, member=s05_member, template=_coupon_50_off(hq), source="manual", idempotency_key="c-s05"
    )


def _s05_checkout(cashier, member, care, coupon, key="s05"):
    return bill_checkout(
        actor=cashier,
        member=member,
        lines=[LineInput(item_id=care.pk)],
        tenders=[
            TenderInput(kind="points", points=1_000),
            TenderInput(kind="stored_value", amount=Money.parse("540.00")),
        ],
        coupon_ids=[coupon.pk],
        idempotency_key=key,
    )


def test_S05_only_real_money_earns_with_a_coupon(cashier, care, s05_member, s05_coupon):
    # given: principal 1,000.00, bonus 200.00, 12,000 points and a 50.00-off coupon
    assert balances(s05_member)["points"] == 12_000

    # when: basic care 600.00, the coupon (payable 550.00), 1,000 points = 10.00, 540.00 stored value
    bill = _s05_checkout(cashier, s05_member, care, s05_coupon)

    # then
    assert bill.status == BillStatus.COMPLETED
    assert (bill.list_total_fen, bill.discount_total_fen, bill.payable_total_fen) == (60_000, 5_000, 55_000)
    sv = Tender.objects.get(bill=bill, kind="stored_value")
    assert (sv.principal_fen, sv.bonus_fen) == (45_000, 9_000)
    line = bill.lines.get()
    assert (line.unit_price_fen, line.discount_fen, line.line_total_fen) == (60_000, 5_000, 55_000)
    assert line.price_steps[-1]["step"] == "coupon" and "50元代金券" in line.price_steps[-1]["reason"]
    assert (bill.earning_total_fen, bill.points_earned) == (45_000, 450)
    assert balances(s05_member) == {"principal": 55_000, "bonus": 11_000, "points": 11_450, "growth": 45_000}
    s05_coupon.refresh_from_db()
    assert (s05_coupon.status, s05_coupon.used_bill_id, s05_coupon.discount_fen) == ("used", bill.pk, 5_000)
    assert verify_ledger() == [] and verify_points_lots() == []


def test_S22_a_full_refund_returns_the_coupon_if_still_valid(cashier, manager_at_till, care, s05_member, s05_coupon):
    bill = _s05_checkout(cashier, s05_member, care, s05_coupon)

    bill_refund(actor=manager_at_till, bill=bill, reason="顾客不满意", idempotency_key="r-s22")

    # the coupon, the 1,000 offset points, 450.00 principal and 90.00 bonus are back; the 450 earned taken back
    s05_coupon.refresh_from_db()
    assert (s05_coupon.status, s05_coupon.used_bill_id) == ("active", None)
    assert balances(s05_member) == {"principal": 100_000, "bonus": 20_000, "points": 12_000, "growth": 0}
    assert verify_ledger() == [] and verify_points_lots() == []


def test_S22_an_expired_coupon_stays_used_after_the_refund(cashier, manager_at_till, care, s05_member, s05_coupon):
    bill = _s05_checkout(cashier, s05_member, care, s05_coupon)
    yesterday = timezone.localdate() - timedelta(days=1)
    Coupon.objects.filter(pk=s05_coupon.pk).update(valid_from=yesterday, valid_until=yesterday)

    bill_refund(actor=manager_at_till, bill=bill, reason="顾客不满意", idempotency_key="r-s22b")

    s05_coupon.refresh_from_db()
    assert s05_coupon.status == CouponStatus.USED


def test_a_used_coupon_is_refused_and_nothing_is_written(cashier, care, s05_member, s05_coupon):
    _s05_checkout(cashier, s05_member, care, s05_coupon)
    before = sales_state()

    with pytest.raises(ApplicationError) as caught:
        _s05_checkout(cashier, s05_member, care, s05_coupon, key="s05-again")

    assert caught.value.code == "coupon.not_active"
    assert sales_state() == before


def test_a_coupon_below_its_minimum_spend_is_refused(hq, cashier, care, s05_member):
    template = coupon_template_save(
        actor=hq,
        data=CouponTemplateInput(
            name="满1000减100", kind=CouponKind.AMOUNT_OFF, amount_off_fen=10_000, min_spend_fen=100_000, valid_days=7
        ),
    )
    coupon = coupon_issue(actor=cashier, member=s05_member, template=template, source="manual", idempotency_key="c1")
    with pytest.raises(ApplicationError) as caught:
        _s05_checkout(cashier, s05_member, care, coupon)
    assert caught.value.code == "coupon.min_spend"
    assert caught.value.field == "coupons"


def test_another_members_coupon_is_not_found(hq, cashier, care, s05_member, make_member, store1):
    other = make_member(store1, name="王女士")
    coupon = coupon_issue(
        actor=cashier, member=other, template=_coupon_50_off(hq), source="manual", idempotency_key="c2"
    )
    with pytest.raises(ApplicationError) as caught:
        _s05_checkout(cashier, s05_member, care, coupon)
    assert caught.value.code == "coupon.not_found"


def test_coupon_issue_is_idempotent_and_keeps_the_per_member_limit(hq, cashier, s05_member):
    template = _coupon_50_off(hq, per_member_limit=1)
    first = coupon_issue(actor=cashier, member=s05_member, template=template, source="manual", idempotency_key="k1")
    again = coupon_issue(actor=cashier, member=s05_member, template=template, source="manual", idempotency_key="k1")
    assert again.pk == first.pk
    with pytest.raises(ApplicationError) as caught:
        coupon_issue(actor=cashier, member=s05_member, template=template, source="manual", idempotency_key="k2")
    assert caught.value.code == "coupon.limit_reached"
    assert Coupon.objects.count() == 1
    today = timezone.localdate()
    assert (first.valid_from, first.valid_until) == (today, today + timedelta(days=29))


def test_two_coupons_that_do_not_stack_are_refused(hq, cashier, care, s05_member):
    template = _coupon_50_off(hq)
    one = coupon_issue(actor=cashier, member=s05_member, template=template, source="manual", idempotency_key="a")
    two = coupon_issue(actor=cashier, member=s05_member, template=template, source="manual", idempotency_key="b")
    with pytest.raises(ApplicationError) as caught:
        bill_checkout(
            actor=cashier,
            member=s05_member,
            lines=[LineInput(item_id=care.pk)],
            tenders=[TenderInput(kind="cash", amount=Money.parse("500.00"))],
            coupon_ids=[one.pk, two.pk],
            idempotency_key="two",
        )
    assert caught.value.code == "coupon.not_stackable"


# --- S-21 promotions ---------------------------------------------------------------------------------------


def _line(total_fen: int, member_fen: int | None = None, *, kind: str = "service", category: int = 1) -> OfferLine:
    return OfferLine(
        item_id=category * 10,
        category_id=category,
        kind=kind,
        quantity=1,
        base_unit_fen=total_fen,
        member_unit_fen=total_fen if member_fen is None else member_fen,
    )


class _Promo:
    """A promotion as the evaluator reads it (no database needed for the arithmetic)."""

    def __init__(self, pk: int, kind: str, **values: object) -> None:
        self.pk, self.kind, self.name = pk, kind, values.pop("name", f"promo {pk}")
        self.threshold_fen = self.save_fen = self.buy_quantity = self.free_quantity = 0
        self.pay_bp, self.repeat, self.item_kind, self.is_active = 10_000, False, "", True
        self.category_ids: list[int] = []
        self.item_ids: list[int] = []
        self.store_ids: list[int] = []
        self.starts_on = self.ends_on = None
        for name, value in values.items():
            setattr(self, name, value)


def test_S21_spend_1000_save_100_on_services():
    spend_save = _Promo(1, PromotionKind.SPEND_SAVE, threshold_fen=100_000, save_fen=10_000, item_kind="service")
    lines = [_line(60_000), _line(50_000), _line(26_000, kind="product")]
    result = evaluate(
        lines=lines, promotions=[spend_save], coupons=[], policy="best_single", store_id=1, on=date(2026, 11, 20)
    )
    # services 1,100.00 reach 1,000.00: 100.00 off, split 60:50 → 54.55 + 45.45; retail untouched
    assert [r.discount_fen for r in result.lines] == [5_455, 4_545, 0]
    assert result.payable_fen(lines) == 126_000


def test_S21_double_eleven_88_percent_only_inside_its_dates():
    promo = _Promo(
        2,
        PromotionKind.PERCENT_OFF,
        pay_bp=8_800,
        item_kind="service",
        starts_on=date(2026, 11, 1),
        ends_on=date(2026, 11, 11),
    )
    lines = [_line(68_000)]
    inside = evaluate(
        lines=lines, promotions=[promo], coupons=[], policy="best_single", store_id=1, on=date(2026, 11, 11)
    )
    after = evaluate(
        lines=lines, promotions=[promo], coupons=[], policy="best_single", store_id=1, on=date(2026, 11, 12)
    )
    assert inside.payable_fen(lines) == 59_840  # 680.00 × 88%
    assert after.payable_fen(lines) == 68_000


def test_S21_tier_discount_and_promotion_do_not_stack_the_better_one_wins():
    promo = _Promo(2, PromotionKind.PERCENT_OFF, pay_bp=8_800, item_kind="service", name="双十一")
    # Gold (15% off) pays 578.00 for 680.00: better than 88% (598.40) → the tier discount stands
    gold = [_line(68_000, 57_800)]
    result = evaluate(
        lines=gold, promotions=[promo], coupons=[], policy="best_single", store_id=1, on=date(2026, 11, 5)
    )
    assert (result.payable_fen(gold), result.promotions, result.lines[0].use_member_price) == (57_800, [], True)
    # Silver (10% off) pays 612.00: 88% is better → the promotion replaces the tier discount, not both
    silver = [_line(68_000, 61_200)]
    result = evaluate(
        lines=silver, promotions=[promo], coupons=[], policy="best_single", store_id=1, on=date(2026, 11, 5)
    )
    assert (result.payable_fen(silver), result.lines[0].use_member_price) == (59_840, False)
    assert result.promotions == [promo]
    # with the stacking policy both apply: 612.00 × 88% = 538.56
    result = evaluate(lines=silver, promotions=[promo], coupons=[], policy="stack", store_id=1, on=date(2026, 11, 5))
    assert result.payable_fen(silver) == 53_856


def test_percent_rounds_down_to_the_fen_for_the_customer():
    assert percent_paid_fen(9_999, 8_800) == 8_799  # 87.9912 → 87.99


def test_S21_promotion_at_checkout_names_itself_on_the_line(hq, cashier, member, care, lifting, serum):
    # given: 满1000减100 on services, stored and policy set through the services
    promotion_save(
        actor=hq,
        data=PromotionInput(
            name="满1000减100",
            kind=PromotionKind.SPEND_SAVE,
            threshold_fen=100_000,
            save_fen=10_000,
            item_kind="service",
        ),
    )
    promotion_settings_set(actor=hq, stacking=StackingPolicy.BEST_SINGLE)

    # when: care 600.00 + lifting 1,000.00 + serum 250.00, paid in cash
    bill = bill_checkout(
        actor=cashier,
        member=member,
        lines=[LineInput(item_id=care.pk), LineInput(item_id=lifting.pk), LineInput(item_id=serum.pk)],
        tenders=[TenderInput(kind="cash", amount=Money.parse("1750.00"))],
        idempotency_key="s21",
    )

    # then: services 1,600.00 ≥ 1,000.00 → 100.00 off split 600:1,000 (37.50 + 62.50); retail full price
    lines = list(bill.lines.order_by("pk"))
    assert [line.discount_fen for line in lines] == [3_750, 6_250, 0]
    assert bill.payable_total_fen == 175_000
    assert "满1000减100" in lines[0].price_steps[-1]["reason"]
    assert verify_ledger() == []


def test_an_open_bill_gets_its_coupon_at_completion(cashier, care, s05_member, s05_coupon):
    bill = bill_open(actor=cashier, member=s05_member)
    bill_add_line(actor=cashier, bill=bill, item=care)
    done = bill_complete(
        actor=cashier,
        bill=bill,
        tenders=[TenderInput(kind="cash", amount=Money.parse("550.00"))],
        coupon_ids=[s05_coupon.pk],
        idempotency_key="open-coupon",
    )
    done.refresh_from_db()
    assert (done.payable_total_fen, done.discount_total_fen) == (55_000, 5_000)
    line = done.lines.get()
    assert (line.discount_fen, line.line_total_fen) == (5_000, 55_000)
    s05_coupon.refresh_from_db()
    assert s05_coupon.status == "used"


def test_a_coupon_key_reused_for_another_member_is_a_conflict(hq, cashier, s05_member, make_member, store1):
    template = _coupon_50_off(hq)
    coupon_issue(actor=cashier, member=s05_member, template=template, source="manual", idempotency_key="same")
    other = make_member(store1, name="王女士")
    with pytest.raises(ApplicationError) as caught:
        coupon_issue(actor=cashier, member=other, template=template, source="manual", idempotency_key="same")
    assert caught.value.code == "idempotency.key_reused"
    assert Coupon.objects.count() == 1


@pytest.mark.parametrize("field", ["priority", "buy_quantity", "free_quantity"])
def test_promotion_counts_out_of_range_are_refused_naming_the_field(hq, field):
    values = {"buy_quantity": 1, "free_quantity": 1, field: -1}
    with pytest.raises(ApplicationError) as caught:
        promotion_save(actor=hq, data=PromotionInput(name="买一送一", kind=PromotionKind.BUY_X_GET_Y, **values))
    assert (caught.value.code, caught.value.field) == (f"promotions.invalid_{field}", field)


def test_a_manual_price_survives_a_live_promotion_and_a_coupon(
    hq, cashier, manager, manager_pin, care, serum, s05_member, s05_coupon
):
    # given: a live promotion on retail only, and a care line priced by hand at 570.00 (95%: no approval needed)
    promotion_save(
        actor=hq,
        data=PromotionInput(name="零售88折", kind=PromotionKind.PERCENT_OFF, pay_bp=8_800, item_kind="product"),
    )

    # when: care at 570.00 by hand + serum 250.00 (88% = 220.00), the 50.00 coupon on what is left
    bill = bill_checkout(
        actor=cashier,
        member=s05_member,
        lines=[LineInput(item_id=care.pk, unit_price=Money.parse("570.00")), LineInput(item_id=serum.pk)],
        tenders=[TenderInput(kind="cash", amount=Money.parse("740.00"))],
        coupon_ids=[s05_coupon.pk],
        idempotency_key="manual-kept",
    )

    # then: the manual price stands and takes no offer; the promotion and the coupon land on the serum
    care_line, serum_line = bill.lines.order_by("pk")
    assert (care_line.unit_price_fen, care_line.discount_fen, care_line.line_total_fen) == (57_000, 0, 57_000)
    assert (serum_line.unit_price_fen, serum_line.discount_fen, serum_line.line_total_fen) == (25_000, 8_000, 17_000)
    assert bill.payable_total_fen == 74_000


def test_the_terms_of_a_template_with_issued_coupons_cannot_change(hq, cashier, s05_member):
    from meiye.core.errors import Conflict

    template = _coupon_50_off(hq)
    coupon_issue(actor=cashier, member=s05_member, template=template, source="manual", idempotency_key="t1")
    with pytest.raises(Conflict) as caught:
        coupon_template_save(
            actor=hq,
            template=template,
            data=CouponTemplateInput(
                name="50元代金券", kind=CouponKind.AMOUNT_OFF, amount_off_fen=8_000, valid_days=30
            ),
        )
    assert (caught.value.code, caught.value.field) == ("coupon.template_in_use", "amount_off_fen")
    # the name and the active flag may still change
    coupon_template_save(
        actor=hq,
        template=template,
        data=CouponTemplateInput(
            name="五十元券", kind=CouponKind.AMOUNT_OFF, amount_off_fen=5_000, valid_days=30, is_active=False
        ),
    )
    template.refresh_from_db()
    assert (template.name, template.amount_off_fen, template.is_active) == ("五十元券", 5_000, False)


def test_a_template_past_its_end_date_issues_nothing(hq, cashier, s05_member):
    today = timezone.localdate()
    template = coupon_template_save(
        actor=hq,
        data=CouponTemplateInput(
            name="过期券",
            kind=CouponKind.AMOUNT_OFF,
            amount_off_fen=1_000,
            valid_from=today - timedelta(days=10),
            valid_until=today - timedelta(days=1),
        ),
    )
    with pytest.raises(ApplicationError) as caught:
        coupon_issue(actor=cashier, member=s05_member, template=template, source="manual", idempotency_key="x1")
    assert caught.value.code == "coupon.template_expired"
    assert Coupon.objects.count() == 0
