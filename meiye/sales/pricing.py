"""How a bill line gets its price, and how real money becomes points: two pipelines of named steps.

Pricing: ``PRICING_STEPS`` runs in order over each line. A step is a function ``(ctx, line)`` that may
set a new unit price with ``line.set_price(step, unit_price_fen, reason)``; every change is recorded
in ``line.steps`` ({step, unit_price_fen, reason}) so the receipt shows each discount with its reason.
Later issues insert their steps into the list (tier discount in ``member_price``, promotions and
coupons in ``promotions_and_coupons``) without touching the others.

Earning: ``EARNING_STEPS`` runs over each line once the bill's earning money (cash, card, WeChat,
Alipay and stored-value principal — never bonus or points) has been allocated to the lines. A step
sets the rate or multiplies the multiplier; points per line = floor(earning × rate × multiplier).

Rounding rules live here, one named function each, with the mode written down.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple

from meiye.catalog.models import Item
from meiye.core.errors import ApplicationError, ValidationFailed
from meiye.core.money import Money, allocate_int
from meiye.loyalty.rules import birthday_multiplier, member_day_multiplier
from meiye.loyalty.services import points_for_amount
from meiye.members.models import Member
from meiye.org.context import Actor
from meiye.org.models import Staff, Store
from meiye.org.roles import Perm
from meiye.org.services import approval_pin_check
from meiye.sales.models import BASIS_POINTS, SalesSettings

# --- rounding rules ------------------------------------------------------------------------------------


def discount_floor_fen(member_price_fen: int, floor_bp: int) -> int:
    """The lowest unit price a cashier may set alone: ``floor_bp`` of the member price, rounded UP to the
    fen, so rounding never lets the price fall below the configured share."""
    return -((-member_price_fen * floor_bp) // BASIS_POINTS)


def points_offset_cap_fen(payable_fen: int, cap_bp: int) -> int:
    """The most that points may pay of a bill: ``cap_bp`` of the payable amount, rounded DOWN to the fen."""
    return payable_fen * cap_bp // BASIS_POINTS


def points_offset_value_fen(points: int, points_per_yuan: int) -> int | None:
    """What ``points`` are worth in fen at ``points_per_yuan`` points per 元; None unless it is a whole
    number of fen (no rounding: the cashier states a number of points that converts exactly)."""
    value, remainder = divmod(points * 100, points_per_yuan)
    return value if remainder == 0 else None


def tier_price_fen(unit_price_fen: int, discount_bp: int) -> int:
    """The member's tier price: ``unit_price × (1 − discount_bp / 10,000)`` rounded HALF UP to the fen
    (四舍五入): 680.00 at 15% off is 578.00; 117.64 at 15% off is 99.994 → 99.99; 0.03 at 50% off → 0.02."""
    paid_bp = BASIS_POINTS - discount_bp
    return (unit_price_fen * paid_bp * 2 + BASIS_POINTS) // (2 * BASIS_POINTS)


def allocate_earning(earning_fen: int, line_totals: list[int]) -> list[int]:
    """The bill's earning money split over its lines in proportion to their totals (largest remainder)."""
    if not line_totals:
        return []
    return allocate_int(earning_fen, line_totals)


def prorate_cumulative(total: int, done_units: int, units: int, all_units: int) -> int:
    """The share of ``total`` belonging to ``units`` more of ``all_units`` after ``done_units`` were taken.

    Cumulative floor: share(k) = floor(total × k / all_units), so successive partial shares never drift
    and the last one takes exactly what is left (refunding 1 + 1 + 1 of 3 gives back the whole total).
    """
    before = total * done_units // all_units
    after = total * (done_units + units) // all_units
    return after - before


# --- pricing ---------------------------------------------------------------------------------------------


@dataclass
class PricingContext:
    """What every pricing step may look at for one bill."""

    actor: Actor
    store: Store
    member: Member | None
    settings: SalesSettings
    store_prices: dict[int, int]  # item id -> the store's own price in fen
    member_info: dict[str, Any] = field(default_factory=dict)  # tier and its rules (loyalty issue)


@dataclass
class LineDraft:
    """A line being priced. Steps read and set ``unit_price_fen`` through ``set_price``."""

    item: Item
    quantity: int
    requested_price: Money | None = None  # a manual unit price asked for by the cashier
    approver: Staff | None = None
    approval_pin: str = ""
    list_price_fen: int = 0
    unit_price_fen: int = 0
    member_price_fen: int = 0
    steps: list[dict[str, Any]] = field(default_factory=list)
    approved_by: Staff | None = None
    manual_adjusted: bool = False
    # The approval the line already holds when it is changed in place (``sales.services.bill_line_update``):
    # who approved, and the manual unit price she approved.
    approved_earlier_by: Staff | None = None
    approved_earlier_fen: int | None = None

    def set_price(self, step: str, unit_price_fen: int, reason: str) -> None:
        if isinstance(unit_price_fen, bool) or not isinstance(unit_price_fen, int) or unit_price_fen < 0:
            raise ValueError(f"pricing step {step} set an invalid price {unit_price_fen!r}")
        self.unit_price_fen = unit_price_fen
        self.steps.append({"step": step, "unit_price_fen": unit_price_fen, "reason": reason})

    @property
    def line_total_fen(self) -> int:
        return self.unit_price_fen * self.quantity


class PricingStep(NamedTuple):
    name: str
    apply: Callable[[PricingContext, LineDraft], None]


def step_list_price(ctx: PricingContext, line: LineDraft) -> None:
    line.list_price_fen = line.item.price_fen
    line.set_price("list_price", line.item.price_fen, "标价 List price")


def step_store_price(ctx: PricingContext, line: LineDraft) -> None:
    """A store's own price replaces the catalogue's: it becomes the line's list price (what the store's
    price list shows), so discounts are measured from it."""
    override = ctx.store_prices.get(line.item.pk)
    if override is not None and override != line.unit_price_fen:
        line.list_price_fen = override
        line.set_price("store_price", override, f"门店价 Store price ({ctx.store.name})")


def tier_discount_bp(member_info: dict[str, Any], item: Item) -> int:
    """The basis points off that the member's tier gives on ``item``: by its earning category if the tier
    names it, else by its kind ("service" / "product"), else none (S-01: Gold 15% on services, not retail)."""
    discounts = member_info.get("tier_discounts_bp") or {}
    by_category = discounts.get(item.category.earning_category)
    return int(by_category if by_category is not None else discounts.get(item.kind, 0))


def step_member_price(ctx: PricingContext, line: LineDraft) -> None:
    """The member's price: her tier's discount on the current price (``loyalty.tiers.member_tier_info``,
    read from the bill's snapshot, so a tier reached on this bill applies from the next one) (S-01).

    Whatever this step leaves is "the member price" that the cashier's own discount floor refers to.
    """
    discount = tier_discount_bp(ctx.member_info, line.item)
    if discount > 0:
        price = tier_price_fen(line.unit_price_fen, discount)
        if price != line.unit_price_fen:
            name_zh = ctx.member_info.get("tier_name") or ""
            name_en = ctx.member_info.get("tier_name_en") or name_zh
            share = _percent_text(discount)
            line.set_price("member_price", price, f"{name_zh}会员价 减{share} {name_en} member price {share} off")
    line.member_price_fen = line.unit_price_fen


# Promotion and coupon rules (S-21): each takes (ctx, line) like a step. Empty until that issue.
PROMOTION_RULES: list[Callable[[PricingContext, LineDraft], None]] = []


def step_promotions_and_coupons(ctx: PricingContext, line: LineDraft) -> None:
    for rule in PROMOTION_RULES:
        rule(ctx, line)


def step_manual_adjustment(ctx: PricingContext, line: LineDraft) -> None:
    """A price set by hand (S-20): alone down to the floor; below it only with a manager's approval."""
    if line.requested_price is None:
        return
    price = line.requested_price.fen
    if price < 0:
        raise ValidationFailed(
            "pricing.invalid_price", zh="单价：不能为负数。", en="unit_price: must not be negative.", field="unit_price"
        )
    if price > line.unit_price_fen:
        raise ValidationFailed(
            "pricing.above_price",
            zh=f"单价：手工价 {Money(price)} 高于当前价 {Money(line.unit_price_fen)}，只能降价。",
            en=f"unit_price: the manual price {Money(price)} is above the current price {Money(line.unit_price_fen)}; "
            "a manual price may only lower it.",
            field="unit_price",
        )
    floor = discount_floor_fen(line.member_price_fen, ctx.settings.manual_discount_floor_bp)
    reason = "手工改价 Manual price"
    if price < floor:
        line.approved_by = _approval_kept(line, price) or _approval(ctx, line, floor)
        reason += f"（{line.approved_by} 批准 approved）"
    line.manual_adjusted = True
    line.set_price("manual_adjustment", price, reason)


PRICING_STEPS: list[PricingStep] = [
    PricingStep("list_price", step_list_price),
    PricingStep("store_price", step_store_price),
    PricingStep("member_price", step_member_price),
    PricingStep("promotions_and_coupons", step_promotions_and_coupons),
    PricingStep("manual_adjustment", step_manual_adjustment),
]


def price_line(ctx: PricingContext, line: LineDraft) -> LineDraft:
    for step in PRICING_STEPS:
        step.apply(ctx, line)
    return line


def can_approve_discount(approver: Staff, store: Store) -> bool:
    """A staff member of the store's organisation holding ``sales.approve_discount`` for that store."""
    if approver.organisation_id != store.organisation_id or not approver.can(Perm.APPROVE_DISCOUNT):
        return False
    return approver.sees_all_stores or approver.stores.filter(pk=store.pk).exists()


def _approval_kept(line: LineDraft, price: int) -> Staff | None:
    """The approval a line already holds, still good for ``price``: a line changed in place keeps it (no PIN
    again) while its manual price is not lower than the price that was approved and no other approver is
    named. A lower price, or another approver, needs a fresh approval."""
    earlier = line.approved_earlier_by
    if earlier is None or line.approved_earlier_fen is None or price < line.approved_earlier_fen:
        return None
    if line.approver is not None and line.approver.pk != earlier.pk:
        return None
    return earlier


def _approval(ctx: PricingContext, line: LineDraft, floor: int) -> Staff:
    """The staff member approving a price below the floor, or ``pricing.approval_required``."""
    actor_staff = ctx.actor.staff
    approver = line.approver
    if approver is None and actor_staff is not None and can_approve_discount(actor_staff, ctx.store):
        return actor_staff  # the manager is at the till herself
    if approver is not None and can_approve_discount(approver, ctx.store):
        if actor_staff is not None and approver.pk == actor_staff.pk:
            return approver
        if approval_pin_check(staff=approver, pin=line.approval_pin):
            return approver
        problem_zh, problem_en = "审批密码不正确", "the approval PIN is wrong"
    elif approver is not None:
        problem_zh, problem_en = f"{approver} 无权审批本店改价", f"{approver} may not approve discounts in this store"
    else:
        problem_zh, problem_en = "需要店长审批", "a store manager must approve it"
    share = ctx.settings.manual_discount_floor_bp / 100
    raise ApplicationError(
        "pricing.approval_required",
        zh=f"单价：低于会员价的 {share:g}%（{Money(floor)}），{problem_zh}。",
        en=f"unit_price: below {share:g}% of the member price ({Money(floor)}); {problem_en}.",
        field="unit_price",
        extra={"floor_fen": floor, "member_price_fen": line.member_price_fen},
    )


# --- earning -----------------------------------------------------------------------------------------------


@dataclass
class EarningContext:
    """What every earning step may look at for one completed bill."""

    actor: Actor
    store: Store
    member: Member
    rates: dict[str, int]  # points per 元 by earning category
    on: date  # the store-local day of the bill
    member_info: dict[str, Any] = field(default_factory=dict)


@dataclass
class LineEarning:
    earning_category: str
    earning_fen: int
    points_per_yuan: int = 0
    multiplier_num: int = 1
    multiplier_den: int = 1
    steps: list[dict[str, Any]] = field(default_factory=list)

    def multiply(self, step: str, num: int, den: int, reason: str) -> None:
        """Stack a multiplier (tier ×1.2 = 6/5, birthday ×2 = 2/1) as an exact fraction."""
        self.multiplier_num *= num
        self.multiplier_den *= den
        self.steps.append({"step": step, "multiplier": f"{num}/{den}", "reason": reason})

    @property
    def points(self) -> int:
        if self.earning_fen <= 0 or self.points_per_yuan <= 0:
            return 0
        return points_for_amount(
            earning_fen=self.earning_fen,
            points_per_yuan=self.points_per_yuan,
            multiplier_num=self.multiplier_num,
            multiplier_den=self.multiplier_den,
        )


class EarningStep(NamedTuple):
    name: str
    apply: Callable[[EarningContext, LineEarning], None]


def step_base_rate(ctx: EarningContext, line: LineEarning) -> None:
    line.points_per_yuan = ctx.rates.get(line.earning_category, 0)
    line.steps.append({"step": "base_rate", "points_per_yuan": line.points_per_yuan, "reason": "基础积分 Base rate"})


def step_tier_multiplier(ctx: EarningContext, line: LineEarning) -> None:
    """The member's tier multiplies the base rate (S-03: Gold ×1.2 = 6/5, Diamond ×1.5 = 3/2)."""
    num = int(ctx.member_info.get("points_multiplier_num") or 1)
    den = int(ctx.member_info.get("points_multiplier_den") or 1)
    if num == den:
        return
    name_zh = ctx.member_info.get("tier_name") or ""
    name_en = ctx.member_info.get("tier_name_en") or name_zh
    times = _multiplier_text(num, den)
    line.multiply("tier_multiplier", num, den, f"{name_zh}积分×{times} {name_en} points ×{times}")


def step_birthday_month(ctx: EarningContext, line: LineEarning) -> None:
    """Bills in the member's birthday month earn more (S-04: ×2), per ``loyalty.rules`` (no query: cached)."""
    fraction = birthday_multiplier(ctx.member, ctx.on)
    if fraction is None:
        return
    times = _multiplier_text(*fraction)
    line.multiply("birthday_month", *fraction, f"生日月积分×{times} Birthday month points ×{times}")


def step_member_day(ctx: EarningContext, line: LineEarning) -> None:
    """Bills on the member day earn more (S-21: the 8th, ×2), per ``loyalty.rules`` (no query: cached)."""
    fraction = member_day_multiplier(ctx.member, ctx.on)
    if fraction is None:
        return
    times = _multiplier_text(*fraction)
    line.multiply("member_day", *fraction, f"会员日积分×{times} Member day points ×{times}")


EARNING_STEPS: list[EarningStep] = [
    EarningStep("base_rate", step_base_rate),
    EarningStep("tier_multiplier", step_tier_multiplier),
    EarningStep("birthday_month", step_birthday_month),
    EarningStep("member_day", step_member_day),
]


def earn_line(ctx: EarningContext, line: LineEarning) -> LineEarning:
    for step in EARNING_STEPS:
        step.apply(ctx, line)
    return line


def _percent_text(bp: int) -> str:
    """ "15%" for 1500 basis points, "12.5%" for 1250."""
    whole, rest = divmod(bp, 100)
    return f"{whole}%" if rest == 0 else f"{whole}.{rest:02d}".rstrip("0") + "%"


def _multiplier_text(num: int, den: int) -> str:
    """ "1.2" for 6/5, "1.5" for 3/2, "2" for 2/1; a fraction that is not a whole number of basis points
    stays a fraction ("4/3")."""
    bp, rest = divmod(num * BASIS_POINTS, den)
    if rest:
        return f"{num}/{den}"
    whole, frac = divmod(bp, BASIS_POINTS)
    return str(whole) if frac == 0 else f"{whole}.{frac:04d}".rstrip("0")


def points_offset_quote(*, payable_fen: int, points_balance: int, points_per_yuan: int, cap_bp: int) -> tuple[int, int]:
    """The most a member's points may pay of a bill, taken in WHOLE 元 (S-06): ``(value_fen, points)``.

    The value is the smaller of the cap (``cap_bp`` of the payable, rounded down to the fen) and what the
    balance buys, rounded DOWN to the 元; the points are exactly that many 元 at ``points_per_yuan``.
    S-06: Gold (90 per 元), 10,000 points, payable 500.00, cap 10% → 50.00 for 4,500 points; with 4,000
    points → 44.00 for 3,960 points. A negative balance or a zero rate offsets nothing.
    """
    if points_balance <= 0 or points_per_yuan <= 0 or payable_fen <= 0:
        return 0, 0
    cap_yuan = points_offset_cap_fen(payable_fen, cap_bp) // 100
    yuan = min(cap_yuan, points_balance // points_per_yuan)
    return yuan * 100, yuan * points_per_yuan
