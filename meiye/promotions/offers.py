"""Which promotions and coupons a bill gets, and how much each takes off each line. Pure arithmetic: no
queries, no writes (the checkout passes in the rows it read and writes what comes out).

The rules, one place each:

- A line with a manual price (S-20) takes no offer: the cashier's price is final.
- Promotions (S-21). ``best_single`` (the default policy): each line gets at most one of the tier discount
  and a promotion. The bill is priced once with the tier discount only, and once per applicable promotion
  with that promotion replacing the tier discount on the lines it covers; the lowest payable wins, a tie
  goes to the tier discount. ``stack``: the tier price, then every applicable promotion in priority order.
- Coupons come after promotions, in the order given. A coupon that is not stackable cannot share a bill
  with another coupon. A coupon's minimum spend is measured on the lines it covers, as priced so far.
- Rounding, with the mode written down: a percentage is rounded DOWN to the fen of what the customer pays
  (``percent_paid_fen``); an amount off several lines is split in proportion to their totals by the largest
  remainder (``allocate_int``), so the parts add up to the whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from meiye.core.errors import ValidationFailed
from meiye.core.money import Money, allocate_int
from meiye.promotions.models import (
    BASIS_POINTS,
    Coupon,
    CouponKind,
    Promotion,
    PromotionKind,
    StackingPolicy,
)


def percent_paid_fen(total_fen: int, pay_bp: int) -> int:
    """What the customer pays of ``total_fen`` at ``pay_bp`` (8,800 = 88%), rounded DOWN to the fen."""
    return total_fen * pay_bp // BASIS_POINTS


@dataclass
class OfferLine:
    """One bill line as the offers see it."""

    item_id: int
    category_id: int
    kind: str  # ItemKind: service / product
    quantity: int
    base_unit_fen: int  # the store's list price of one unit (before the tier discount)
    member_unit_fen: int  # after the tier discount (equal to base when there is none)
    manual: bool = False  # a manual price: no offer applies

    @property
    def base_total_fen(self) -> int:
        return self.base_unit_fen * self.quantity

    @property
    def member_total_fen(self) -> int:
        return self.member_unit_fen * self.quantity


@dataclass
class Discount:
    step: str  # "promotion" | "coupon"
    source_id: int
    amount_fen: int
    reason: str


@dataclass
class LineResult:
    use_member_price: bool = True  # False: a promotion replaced the tier discount on this line
    discounts: list[Discount] = field(default_factory=list)

    @property
    def discount_fen(self) -> int:
        return sum(d.amount_fen for d in self.discounts)


@dataclass
class OfferResult:
    lines: list[LineResult]
    promotions: list[Promotion]  # the promotions that applied
    coupons: list[tuple[Coupon, int]]  # each coupon used with what it took off

    def payable_fen(self, lines: Sequence[OfferLine]) -> int:
        return sum(_total(line, result) for line, result in zip(lines, self.lines, strict=True))


def evaluate(
    *,
    lines: Sequence[OfferLine],
    promotions: Sequence[Promotion],
    coupons: Sequence[Coupon],
    policy: str,
    store_id: int,
    on: date,
) -> OfferResult:
    """The best offers for ``lines`` (see the module docstring). ``promotions`` are the organisation's live
    ones (the dates and stores are checked here); ``coupons`` the member's coupons the cashier applies,
    already checked to be hers and active (``coupon_check`` below checks dates, store and spend)."""
    live = [p for p in promotions if _promotion_live(p, store_id, on)]
    if policy == StackingPolicy.STACK:
        result = _fresh(lines)
        for promotion in live:
            _apply_promotion(promotion, lines, result, from_base=False)
    else:
        result = _fresh(lines)
        best = result.payable_fen(lines)
        for promotion in live:
            candidate = _fresh(lines)
            if not _apply_promotion(promotion, lines, candidate, from_base=True):
                continue
            payable = candidate.payable_fen(lines)
            if payable < best:
                result, best = candidate, payable
    if len(coupons) > 1 and not all(c.template.stackable for c in coupons):
        raise ValidationFailed(
            "coupon.not_stackable",
            zh="优惠券：所选优惠券中有不可叠加使用的，一张消费单只能用其中一张。",
            en="coupons: one of these coupons cannot be combined with another on the same bill.",
            field="coupons",
        )
    for coupon in coupons:
        taken = _apply_coupon(coupon, lines, result, store_id=store_id, on=on)
        result.coupons.append((coupon, taken))
    return result


def _fresh(lines: Sequence[OfferLine]) -> OfferResult:
    return OfferResult(lines=[LineResult() for _ in lines], promotions=[], coupons=[])


def _total(line: OfferLine, result: LineResult) -> int:
    unit = line.member_unit_fen if result.use_member_price else line.base_unit_fen
    return unit * line.quantity - result.discount_fen


def _promotion_live(promotion: Promotion, store_id: int, on: date) -> bool:
    if not promotion.is_active:
        return False
    if promotion.starts_on is not None and on < promotion.starts_on:
        return False
    if promotion.ends_on is not None and on > promotion.ends_on:
        return False
    return not promotion.store_ids or store_id in promotion.store_ids


def _covers(promotion: Promotion, line: OfferLine) -> bool:
    if line.manual:
        return False
    if promotion.item_kind and line.kind != promotion.item_kind:
        return False
    if promotion.category_ids and line.category_id not in promotion.category_ids:
        return False
    return not promotion.item_ids or line.item_id in promotion.item_ids


def _apply_promotion(promotion: Promotion, lines: Sequence[OfferLine], result: OfferResult, *, from_base: bool) -> bool:
    """Apply ``promotion`` to the lines it covers; ``from_base``: it replaces the tier discount there.
    Returns whether it took anything off."""
    covered = [i for i, line in enumerate(lines) if _covers(promotion, line)]
    if not covered:
        return False
    if from_base:
        for i in covered:
            result.lines[i].use_member_price = False
    totals = {i: _total(lines[i], result.lines[i]) for i in covered}
    off: dict[int, int] = {}
    reason = f"促销 Promotion: {promotion.name}"
    if promotion.kind == PromotionKind.PERCENT_OFF:
        off = {i: total - percent_paid_fen(total, promotion.pay_bp) for i, total in totals.items()}
    elif promotion.kind == PromotionKind.SPEND_SAVE:
        subtotal = sum(totals.values())
        if promotion.threshold_fen <= 0 or subtotal < promotion.threshold_fen:
            off = {}
        else:
            times = subtotal // promotion.threshold_fen if promotion.repeat else 1
            amount = min(promotion.save_fen * times, subtotal)
            off = dict(zip(covered, allocate_int(amount, [totals[i] for i in covered]), strict=True))
    elif promotion.kind == PromotionKind.BUY_X_GET_Y:
        group = promotion.buy_quantity + promotion.free_quantity
        if promotion.buy_quantity > 0 and promotion.free_quantity > 0:
            for i in covered:
                free_units = lines[i].quantity // group * promotion.free_quantity
                off[i] = totals[i] // lines[i].quantity * free_units
    off = {i: amount for i, amount in off.items() if amount > 0}
    if not off:
        if from_base:
            for i in covered:
                result.lines[i].use_member_price = True
        return False
    for i, amount in off.items():
        result.lines[i].discounts.append(Discount("promotion", promotion.pk, amount, reason))
    result.promotions.append(promotion)
    return True


def coupon_check(coupon: Coupon, *, store_id: int, on: date) -> None:
    """Refuse a coupon that is not usable here and now (status, dates, store), naming the rule."""
    template = coupon.template
    if coupon.status != "active" or not template.is_active:
        raise ValidationFailed(
            "coupon.not_active",
            zh=f"优惠券 {coupon.code}：已使用或已作废。",
            en=f"coupon {coupon.code}: already used or void.",
            field="coupons",
        )
    if on < coupon.valid_from or on > coupon.valid_until:
        raise ValidationFailed(
            "coupon.expired",
            zh=f"优惠券 {coupon.code}：有效期 {coupon.valid_from} 至 {coupon.valid_until}，今天不能使用。",
            en=f"coupon {coupon.code}: valid {coupon.valid_from} to {coupon.valid_until}, not today.",
            field="coupons",
        )
    if template.store_ids and store_id not in template.store_ids:
        raise ValidationFailed(
            "coupon.wrong_store",
            zh=f"优惠券 {coupon.code}：不适用于本门店。",
            en=f"coupon {coupon.code}: not valid in this store.",
            field="coupons",
        )


def _apply_coupon(coupon: Coupon, lines: Sequence[OfferLine], result: OfferResult, *, store_id: int, on: date) -> int:
    coupon_check(coupon, store_id=store_id, on=on)
    template = coupon.template
    covered = [
        i
        for i, line in enumerate(lines)
        if not line.manual and (not template.category_ids or line.category_id in template.category_ids)
    ]
    totals = {i: _total(lines[i], result.lines[i]) for i in covered}
    subtotal = sum(totals.values())
    if not covered or subtotal < max(template.min_spend_fen, 1):
        raise ValidationFailed(
            "coupon.min_spend",
            zh=f"优惠券 {coupon.code}：适用项目需满 {Money(template.min_spend_fen)}，本单适用金额 {Money(subtotal)}。",
            en=f"coupon {coupon.code}: needs {Money(template.min_spend_fen)} of eligible items; "
            f"this bill has {Money(subtotal)}.",
            field="coupons",
        )
    off: dict[int, int] = {}
    if template.kind == CouponKind.AMOUNT_OFF:
        amount = min(template.amount_off_fen, subtotal)
        off = dict(zip(covered, allocate_int(amount, [totals[i] for i in covered]), strict=True))
    elif template.kind == CouponKind.PERCENT_OFF:
        off = {i: total - percent_paid_fen(total, template.pay_bp) for i, total in totals.items()}
    elif template.kind == CouponKind.FREE_SERVICE:
        target = next((i for i in covered if lines[i].item_id == template.free_item_id), None)
        if target is None:
            raise ValidationFailed(
                "coupon.item_missing",
                zh=f"优惠券 {coupon.code}：本单没有可免费的项目。",
                en=f"coupon {coupon.code}: the free service is not on this bill.",
                field="coupons",
            )
        off = {target: totals[target] // lines[target].quantity}
    reason = f"优惠券 Coupon: {template.name} {coupon.code}"
    for i, amount in off.items():
        if amount > 0:
            result.lines[i].discounts.append(Discount("coupon", coupon.pk, amount, reason))
    return sum(off.values())
