"""Reads of stored value. Balances and movements come from the ledger; nothing here writes.

These take a member the caller already obtained through ``meiye.members.selectors.member_get``.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime

from django.db.models import OuterRef, Q, QuerySet, Subquery, Sum

from meiye.core.errors import NotFound
from meiye.core.money import Money, allocate_int
from meiye.ledger.models import Balance
from meiye.ledger.selectors import HistoryLine, account_find, account_history
from meiye.members.models import Member
from meiye.org.models import Store
from meiye.wallet.models import (
    BonusInstalment,
    CardProduct,
    InstalmentStatus,
    Recharge,
    RechargeRule,
    SpendOrder,
    WalletSettings,
)

CNY = "CNY"
PRINCIPAL = "wallet_principal"
BONUS = "wallet_bonus"
PENDING = "wallet_bonus_pending"


@dataclass(frozen=True, slots=True)
class WalletBalance:
    """``total`` is what she may spend (principal + bonus); ``pending`` is bonus promised by a recharge rule
    and not released yet (not spendable)."""

    principal: Money
    bonus: Money
    pending: Money = Money(0)  # noqa: RUF009 - Money is a frozen value

    @property
    def total(self) -> Money:
        return self.principal + self.bonus


def wallet_balance(member: Member, *, lock: bool = False) -> WalletBalance:
    """The member's principal and bonus, in one query.

    ``lock=True`` locks both balance rows (``select_for_update`` in primary-key order, the ledger's order)
    until the end of the surrounding transaction; it must be called inside one. A member without wallet
    accounts yet has nothing to lock and a zero balance.
    """
    rows = Balance.objects.filter(
        account__organisation_id=member.organisation_id,
        account__owner_type="member",
        account__owner_id=member.pk,
        account__asset=CNY,
        account__kind__in=(PRINCIPAL, BONUS, PENDING),
    ).order_by("account_id")
    if lock:
        rows = rows.select_for_update(of=("self",))
    amounts = dict(rows.values_list("account__kind", "amount"))
    return WalletBalance(
        principal=Money(amounts.get(PRINCIPAL, 0)),
        bonus=Money(amounts.get(BONUS, 0)),
        pending=Money(amounts.get(PENDING, 0)),
    )


def wallet_spend_order(store: Store) -> str:
    """The store's rule for taking principal and bonus (proportional unless it set another)."""
    order = WalletSettings.objects.filter(store=store).values_list("spend_order", flat=True).first()
    return spend_order_or_default(order)


def spend_order_subquery(store_ref: str = "pk") -> Subquery:
    """``wallet_spend_order`` as an expression over a store queryset's ``store_ref`` (NULL: no settings row;
    pass the value through ``spend_order_or_default``), so a checkout reads it with the store's row."""
    return Subquery(WalletSettings.objects.filter(store=OuterRef(store_ref)).values("spend_order")[:1])


def spend_order_or_default(value: str | None) -> str:
    return value or SpendOrder.PROPORTIONAL


@dataclass(frozen=True, slots=True)
class WalletHistoryLine:
    """One journal's effect on the member's stored value, with the balances after it."""

    journal_id: int
    code: str
    reference_type: str
    reference_id: str
    created_at: datetime
    principal: Money
    bonus: Money
    principal_after: Money
    bonus_after: Money

    @property
    def total(self) -> Money:
        return self.principal + self.bonus


def wallet_history(member: Member, *, limit: int | None = 50) -> list[WalletHistoryLine]:
    """The principal and bonus movements, newest first, one line per journal, with the balances after it."""
    moves: dict[int, _Move] = {}
    for kind in (PRINCIPAL, BONUS):
        account = account_find(
            organisation_id=member.organisation_id, owner_type="member", owner_id=member.pk, asset=CNY, kind=kind
        )
        if account is None:
            continue
        for line in reversed(account_history(account)):  # oldest first
            move = moves.setdefault(line.journal_id, _Move(line))
            if kind == PRINCIPAL:
                move.principal += line.amount
                move.principal_after = line.balance_after
            else:
                move.bonus += line.amount
                move.bonus_after = line.balance_after
    lines: list[WalletHistoryLine] = []
    principal_after = bonus_after = 0
    for journal_id in sorted(moves):
        move = moves[journal_id]
        principal_after = move.principal_after if move.principal_after is not None else principal_after
        bonus_after = move.bonus_after if move.bonus_after is not None else bonus_after
        lines.append(
            WalletHistoryLine(
                journal_id=journal_id,
                code=move.line.code,
                reference_type=move.line.reference_type,
                reference_id=move.line.reference_id,
                created_at=move.line.created_at,
                principal=Money(move.principal),
                bonus=Money(move.bonus),
                principal_after=Money(principal_after),
                bonus_after=Money(bonus_after),
            )
        )
    lines.reverse()
    return lines[:limit] if limit is not None else lines


@dataclass
class _Move:
    line: HistoryLine
    principal: int = 0
    bonus: int = 0
    principal_after: int | None = None
    bonus_after: int | None = None


def member_recharges(member: Member) -> QuerySet[Recharge]:
    """The member's recharges, newest first."""
    return Recharge.objects.filter(member=member).select_related("store", "product").order_by("-created_at", "-pk")


# --- Card products, recharge rules, bonus plans ------------------------------------------------------------


def card_products(organisation_id: int, *, active_only: bool = False) -> QuerySet[CardProduct]:
    """The organisation's card products, the default first, then by name."""
    qs = CardProduct.objects.filter(organisation_id=organisation_id)
    if active_only:
        qs = qs.filter(active=True)
    return qs.order_by("-is_default", "name", "pk")


def card_product_default(organisation_id: int) -> CardProduct | None:
    """The organisation's default card product (used by a recharge that names none), if active."""
    return CardProduct.objects.filter(organisation_id=organisation_id, is_default=True, active=True).first()


def recharge_rules(product: CardProduct) -> QuerySet[RechargeRule]:
    """A product's rules, the highest threshold first."""
    return (
        RechargeRule.objects.filter(product=product)
        .select_related("coupon_template", "grant_tier")
        .order_by("-threshold_fen", "-pk")
    )


def recharge_rule_for(product: CardProduct | None, amount_fen: int, on: date) -> RechargeRule | None:
    """The rule a recharge of ``amount_fen`` on ``on`` (store local date) gets: among the product's active
    rules valid that day, the one with the highest threshold not above the amount (a tie: the newest)."""
    if product is None:
        return None
    return (
        RechargeRule.objects.filter(product=product, active=True, threshold_fen__lte=amount_fen)
        .filter(Q(starts_on__isnull=True) | Q(starts_on__lte=on), Q(ends_on__isnull=True) | Q(ends_on__gte=on))
        .select_related("coupon_template", "grant_tier")
        .order_by("-threshold_fen", "-pk")
        .first()
    )


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, clamped to the end of a shorter month (01-31 + 1 → 02-28/29)."""
    years, month_index = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, month_index + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True, slots=True)
class InstalmentPlan:
    seq: int  # 2 … N (part 1 is paid with the recharge)
    due_on: date
    amount: Money


@dataclass(frozen=True, slots=True)
class BonusPlan:
    """What a rule gives a recharge on a day: ``now`` credited at once, ``later`` released monthly."""

    rule: RechargeRule | None
    now: Money = Money(0)  # noqa: RUF009
    later: tuple[InstalmentPlan, ...] = field(default_factory=tuple)
    points: int = 0

    @property
    def pending(self) -> Money:
        return Money(sum(part.amount.fen for part in self.later))

    @property
    def total(self) -> Money:
        return self.now + self.pending

    def describe(self) -> dict[str, str]:
        """The preview line in both languages, e.g. 充3000送600：立即到账 100.00，另 500.00 分 5 个月到账，送 300 积分."""
        rule = self.rule
        if rule is None:
            return {"zh-hans": "无充值赠送", "en": "No recharge bonus"}
        name = rule.name or rule_label(rule)
        now, pending = self.now.as_decimal_string(), self.pending.as_decimal_string()
        zh = [f"立即到账 {now}"]
        en = [f"{now} at once"]
        if self.later:
            zh.append(f"另 {pending} 分 {len(self.later)} 个月到账")
            en.append(f"{pending} more over {len(self.later)} months")
        if self.points:
            zh.append(f"送 {self.points} 积分")
            en.append(f"{self.points} points")
        if rule.coupon_template_id and rule.coupon_count:
            zh.append(f"送 {rule.coupon_count} 张{rule.coupon_template}")
            en.append(f"{rule.coupon_count} × {rule.coupon_template}")
        if rule.grant_tier_id:
            zh.append(f"享{rule.grant_tier} {rule.grant_months} 个月")
            en.append(f"{rule.grant_tier} for {rule.grant_months} months")
        return {"zh-hans": f"{name}：" + "，".join(zh), "en": f"{name}: " + ", ".join(en)}


def rule_label(rule: RechargeRule) -> str:
    """充3000送600 (whole yuan without decimals)."""
    return f"充{_yuan(rule.threshold_fen)}送{_yuan(rule.bonus_fen)}"


def _yuan(fen: int) -> str:
    return str(fen // 100) if fen % 100 == 0 else Money(fen).as_decimal_string()


def bonus_plan(rule: RechargeRule | None, on: date) -> BonusPlan:
    """Split a rule's bonus into ``instalments`` equal monthly parts by the largest remainder (the first part
    gets any odd fen first); part 1 is paid on ``on``, part k on the same day k−1 months later (clamped to the
    month's end). Zero parts are left out."""
    if rule is None:
        return BonusPlan(rule=None)
    parts = allocate_int(rule.bonus_fen, [1] * rule.instalments)
    later = tuple(
        InstalmentPlan(seq=index + 1, due_on=add_months(on, index), amount=Money(part))
        for index, part in enumerate(parts)
        if index and part
    )
    return BonusPlan(rule=rule, now=Money(parts[0]), later=later, points=rule.bonus_points)


def recharge_preview(*, product: CardProduct | None, amount: Money, on: date) -> BonusPlan:
    """The bonus a recharge of ``amount`` on ``on`` would get (the recharge page's live preview, the API's)."""
    return bonus_plan(recharge_rule_for(product, amount.fen, on), on)


# --- Instalments ---------------------------------------------------------------------------------------------


def member_instalments(member: Member, *, pending_only: bool = False) -> QuerySet[BonusInstalment]:
    """The member's bonus instalments, the next due first."""
    qs = BonusInstalment.objects.filter(member=member).select_related("recharge")
    if pending_only:
        qs = qs.filter(status=InstalmentStatus.PENDING)
    return qs.order_by("due_on", "pk")


def instalments_due_count(*, on: date, organisation_id: int | None = None) -> int:
    """How many pending instalments are due on or before ``on`` (the command's progress bar)."""
    qs = BonusInstalment.objects.filter(status=InstalmentStatus.PENDING, due_on__lte=on)
    if organisation_id is not None:
        qs = qs.filter(organisation_id=organisation_id)
    return qs.count()


def pending_total(member: Member) -> Money:
    """The sum of the member's pending instalments (equals her ``wallet_bonus_pending`` balance)."""
    total = BonusInstalment.objects.filter(member=member, status=InstalmentStatus.PENDING).aggregate(
        total=Sum("amount_fen")
    )["total"]
    return Money(total or 0)


def recharge_refundable(recharge: Recharge, on: date) -> bool:
    """Whether the cooling-off refund may still be offered on ``on`` (the date only: the spending check is
    the service's, under lock)."""
    return (
        recharge.refund_journal_id is None
        and recharge.cooling_off_until is not None
        and on <= recharge.cooling_off_until
    )


def card_product_get(organisation_id: int, pk: int | str) -> CardProduct:
    """One of the organisation's card products, or ``wallet.product_not_found``."""
    try:
        return CardProduct.objects.get(organisation_id=organisation_id, pk=int(pk))
    except (CardProduct.DoesNotExist, ValueError, TypeError):
        raise NotFound(
            "wallet.product_not_found", zh="找不到该储值卡种类。", en="Card product not found.", field="product"
        ) from None


def recharge_rule_get(product: CardProduct, pk: int | str) -> RechargeRule:
    try:
        return RechargeRule.objects.select_related("coupon_template", "grant_tier").get(product=product, pk=int(pk))
    except (RechargeRule.DoesNotExist, ValueError, TypeError):
        raise NotFound("wallet.rule_not_found", zh="找不到该充值规则。", en="Recharge rule not found.") from None


def member_recharge_get(member: Member, pk: int | str) -> Recharge:
    """One of the member's recharges (the member obtained through ``member_get``), or ``wallet.recharge_not_found``."""
    try:
        return Recharge.objects.select_related("store", "product", "rule").get(member=member, pk=int(pk))
    except (Recharge.DoesNotExist, ValueError, TypeError):
        raise NotFound(
            "wallet.recharge_not_found", zh="找不到该充值记录。", en="Recharge not found.", field="recharge"
        ) from None
