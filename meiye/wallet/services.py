"""Writes for stored value: recharge, the principal/bonus split of a payment, the legs sales posts,
the store's spend order, and the member merge / export / erasure hooks.

Sign convention and accounts: ADR 0003. A recharge is one ``wallet.recharge`` journal; spending and refunds
are legs that ``meiye.sales`` puts into the bill's CNY journal together with its tender and revenue legs
(``wallet_spend_legs`` / ``wallet_refund_legs`` / ``store_account``), so one bill is one journal.

A recharge earns no points and no growth value: points and growth come when the principal is spent.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from meiye.audit.services import audit_record
from meiye.contracts.models import Contract, ContractKind
from meiye.contracts.services import ContractItem, contract_create
from meiye.core.errors import ApplicationError, Conflict, NotFound, PermissionDenied, ValidationFailed
from meiye.core.idempotency import conflict_error, validate_key
from meiye.core.money import Money, allocate_int
from meiye.ledger.models import Account, Balance, Entry, Journal
from meiye.ledger.selectors import account_find, journal_by_idempotency_key
from meiye.ledger.services import (
    AccountKey,
    Leg,
    LockedAccounts,
    Posting,
    account_get_or_create,
    accounts_lock,
    journal_post,
    journals_post,
)
from meiye.loyalty.models import Tier
from meiye.loyalty.selectors import local_today
from meiye.loyalty.services import points_account_keys, points_earn, points_take_back
from meiye.loyalty.tiers import tier_grant
from meiye.members.models import Member
from meiye.members.selectors import member_get, member_survivor
from meiye.notify.events import WALLET_BONUS_RELEASED, WALLET_RECHARGE
from meiye.notify.services import notify_event
from meiye.org.context import Actor
from meiye.org.models import Store
from meiye.org.roles import Perm
from meiye.org.selectors import store_get
from meiye.promotions.models import Coupon, CouponStatus, CouponTemplate
from meiye.promotions.services import coupon_issue, coupon_void
from meiye.wallet.models import (
    BonusInstalment,
    CardProduct,
    InstalmentStatus,
    Recharge,
    RechargeRule,
    SpendOrder,
    Tender,
    WalletClosure,
    WalletSettings,
)
from meiye.wallet.selectors import (
    BONUS,
    CNY,
    PENDING,
    PRINCIPAL,
    BonusPlan,
    WalletBalance,
    add_months,
    bonus_plan,
    card_product_default,
    member_instalments,
    member_recharges,
    recharge_rule_for,
    rule_label,
    wallet_balance,
    wallet_history,
    wallet_spend_order,
)

__all__ = [
    "STORE_ACCOUNT_KINDS",
    "TARGET_PRODUCT_SOURCES",
    "WalletAccounts",
    "WalletBalance",
    "WalletSplit",
    "check_tender",
    "split_amount",
    "store_account",
    "store_account_key",
    "wallet_account_keys",
    "wallet_accounts",
    "wallet_balance",
    "wallet_bonus_release_due",
    "wallet_close",
    "wallet_export_section",
    "wallet_merge",
    "wallet_recharge",
    "wallet_recharge_refund",
    "wallet_refund_legs",
    "wallet_retention",
    "wallet_settings_set",
    "wallet_spend_legs",
    "wallet_split",
    "wallet_split_locked",
    "wallet_transfer",
]

# A store's CNY source/sink accounts (ADR 0003); all may go negative.
STORE_ACCOUNT_KINDS = frozenset(
    {
        "tender_cash",
        "tender_card",
        "tender_wechat",
        "tender_alipay",
        "bonus_issued",
        "revenue",
        "points_offset",
        "package_sessions",  # the CNY side of a bill paid with count-card sessions (like points_offset)
        "gift_card_discount",  # face value given above a gift card's sale price
        "bonus_forfeited",  # bonus money taken back when a card is closed or a recharge refunded
    }
)

logger = logging.getLogger(__name__)

# Where a member's card product comes from when a transfer brings her stored value (the cap to apply). The
# card layer, above wallet, registers the member's live card (product, named); the first answer that is not
# None wins, else the organisation's default product on a named card.
TARGET_PRODUCT_SOURCES: list[Callable[[Member], tuple[CardProduct | None, bool] | None]] = []

PREPAID_RECORD_REASON = (
    "单用途商业预付卡：发卡企业须登记购卡人信息并保存充值、消费记录（《单用途商业预付卡管理办法（试行）》）"
    " / Single-purpose prepaid card: the issuer keeps the purchaser's registration and the card's records"
)


@dataclass(frozen=True, slots=True)
class WalletAccounts:
    principal: Account
    bonus: Account


@dataclass(frozen=True, slots=True)
class WalletAccountKeys:
    principal: AccountKey
    bonus: AccountKey


@dataclass(frozen=True, slots=True)
class WalletSplit:
    """How much of a stored-value payment comes from principal and how much from bonus."""

    principal: Money
    bonus: Money

    @property
    def total(self) -> Money:
        return self.principal + self.bonus


# --- Accounts ----------------------------------------------------------------------------------------------


def store_account(*, store: Store, kind: str) -> Account:
    """One of the store's CNY source/sink accounts: ``tender_<cash|card|wechat|alipay>``, ``revenue``,
    ``bonus_issued`` or ``points_offset`` (created on first use; may go negative)."""
    if kind not in STORE_ACCOUNT_KINDS:
        raise ValueError(f"unknown store account kind {kind!r}; expected one of {sorted(STORE_ACCOUNT_KINDS)}")
    return account_get_or_create(
        organisation_id=store.organisation_id,
        owner_type="store",
        owner_id=store.pk,
        asset=CNY,
        kind=kind,
        may_go_negative=True,
    )


def store_account_key(*, store: Store, kind: str) -> AccountKey:
    """``store_account``'s account as a key for ``ledger.services.accounts_lock`` (nothing is read)."""
    if kind not in STORE_ACCOUNT_KINDS:
        raise ValueError(f"unknown store account kind {kind!r}; expected one of {sorted(STORE_ACCOUNT_KINDS)}")
    return AccountKey("store", store.pk, CNY, kind, may_go_negative=True)


def wallet_account_keys(*, member: Member) -> WalletAccountKeys:
    """``wallet_accounts`` as keys for ``ledger.services.accounts_lock`` (nothing is read)."""
    return WalletAccountKeys(
        principal=AccountKey("member", member.pk, CNY, PRINCIPAL), bonus=AccountKey("member", member.pk, CNY, BONUS)
    )


def wallet_accounts(*, member: Member) -> WalletAccounts:
    """The member's principal and bonus accounts (created on first use; they may not go negative)."""

    def get(kind: str) -> Account:
        return account_get_or_create(
            organisation_id=member.organisation_id, owner_type="member", owner_id=member.pk, asset=CNY, kind=kind
        )

    return WalletAccounts(principal=get(PRINCIPAL), bonus=get(BONUS))


# --- Spending and refunds (legs for the bill's journal) ---------------------------------------------------


def split_amount(*, amount_fen: int, principal_fen: int, bonus_fen: int, spend_order: str) -> tuple[int, int]:
    """(principal, bonus) parts of ``amount_fen`` taken from the two balances. Pure; the caller checks
    that 0 < amount <= principal + bonus.

    proportional: largest remainder over the two balances, a tie going to principal (S-05: 540.00 from
    1,000.00 + 200.00 → 450.00 + 90.00); principal_first / bonus_first: empty one before touching the other.
    """
    if not 0 < amount_fen <= principal_fen + bonus_fen or principal_fen < 0 or bonus_fen < 0:
        raise ValueError(f"cannot take {amount_fen} from {principal_fen} + {bonus_fen}")
    if spend_order == SpendOrder.PRINCIPAL_FIRST:
        principal = min(amount_fen, principal_fen)
        return principal, amount_fen - principal
    if spend_order == SpendOrder.BONUS_FIRST:
        bonus = min(amount_fen, bonus_fen)
        return amount_fen - bonus, bonus
    if spend_order != SpendOrder.PROPORTIONAL:
        raise ValueError(f"unknown spend order {spend_order!r}")
    principal, bonus = allocate_int(amount_fen, [principal_fen, bonus_fen])
    return principal, bonus


def wallet_split(*, member: Member, store: Store, amount: Money) -> WalletSplit:
    """Split a stored-value payment into principal and bonus by the store's spend order.

    Locks the member's two balance rows first, so the split is computed from the balances the payment will
    be posted against: call it inside the checkout's transaction (the lock lasts until that commits).
    Refused with ``wallet.invalid_amount`` (amount <= 0) or ``wallet.insufficient_balance`` (more than
    principal + bonus; ``extra`` holds the balances in fen).
    """
    if not isinstance(amount, Money) or amount.fen <= 0:
        raise _invalid_amount("amount")
    if store.organisation_id != member.organisation_id:
        raise NotFound("store.not_found", zh="找不到门店，或您无权查看。", en="Store not found, or not visible to you.")
    with transaction.atomic():
        balance = wallet_balance(member, lock=True)
        return _split_or_refuse(balance, amount, wallet_spend_order(store))


def wallet_split_locked(
    *, member: Member, store: Store, amount: Money, locked: LockedAccounts, spend_order: str
) -> WalletSplit:
    """``wallet_split`` for a checkout that has locked the member's wallet accounts already, with every other
    account it posts to, in one ``accounts_lock`` (keys from ``wallet_account_keys``), and has read the
    store's ``spend_order`` with its other settings. Same refusals; no query."""
    if not isinstance(amount, Money) or amount.fen <= 0:
        raise _invalid_amount("amount")
    if store.organisation_id != member.organisation_id:
        raise NotFound("store.not_found", zh="找不到门店，或您无权查看。", en="Store not found, or not visible to you.")
    keys = wallet_account_keys(member=member)
    balance = WalletBalance(
        principal=Money(locked.balance(locked.get(keys.principal))),
        bonus=Money(locked.balance(locked.get(keys.bonus))),
    )
    return _split_or_refuse(balance, amount, spend_order)


def _split_or_refuse(balance: WalletBalance, amount: Money, spend_order: str) -> WalletSplit:
    if amount > balance.total:
        raise ApplicationError(
            "wallet.insufficient_balance",
            zh=f"储值余额不足：余额 {balance.total}（本金 {balance.principal}，赠送 {balance.bonus}），本次需 {amount}。",
            en=(
                f"Not enough stored value: the balance is {balance.total} (principal {balance.principal}, "
                f"bonus {balance.bonus}), {amount} is needed."
            ),
            field="amount",
            extra={
                "balance": balance.total.as_decimal_string(),
                "balance_fen": balance.total.fen,
                "principal_fen": balance.principal.fen,
                "bonus_fen": balance.bonus.fen,
                "amount_fen": amount.fen,
            },
        )
    principal, bonus = split_amount(
        amount_fen=amount.fen,
        principal_fen=balance.principal.fen,
        bonus_fen=balance.bonus.fen,
        spend_order=spend_order,
    )
    return WalletSplit(principal=Money(principal), bonus=Money(bonus))


def wallet_spend_legs(*, member: Member, split: WalletSplit) -> list[Leg]:
    """The legs taking ``split`` out of the member's wallet (negative; zero parts left out)."""
    _check_parts(split.principal, split.bonus)
    accounts = wallet_accounts(member=member)
    return [
        Leg(account, -part.fen)
        for account, part in ((accounts.principal, split.principal), (accounts.bonus, split.bonus))
        if part.fen
    ]


def wallet_refund_legs(*, member: Member, principal: Money, bonus: Money) -> list[Leg]:
    """The legs putting principal and bonus back into the member's wallet (positive; zero parts left out).

    A member merged into another since the payment is refunded into the survivor's wallet.
    """
    _check_parts(principal, bonus)
    accounts = wallet_accounts(member=member_survivor(member))
    return [
        Leg(account, part.fen)
        for account, part in ((accounts.principal, principal), (accounts.bonus, bonus))
        if part.fen
    ]


# --- Recharge ----------------------------------------------------------------------------------------------------


def wallet_recharge(
    *,
    actor: Actor,
    member: Member,
    amount: Money,
    tender: str,
    external_ref: str = "",
    bonus: Money = Money(0),  # noqa: B008 - Money is a frozen value
    idempotency_key: str,
    product: CardProduct | None = None,
    named: bool = True,
) -> Recharge:
    """Top up the member's stored value in the actor's store: one ``wallet.recharge`` journal.

    store tender_<tender> −amount, member principal +amount; the bonus: store bonus_issued −(hand bonus +
    the rule's whole bonus), member bonus +(hand bonus + the rule's first part), member
    ``wallet_bonus_pending`` +(the rule's later parts, one ``BonusInstalment`` each).

    ``product`` (None: the organisation's default product, if any) brings the principal cap (named or
    anonymous card; S-16, ``wallet.cap_exceeded`` checked under the lock of her principal, nothing written)
    and the recharge rule (充X送Y): bonus, instalments, bonus points (a ``points.earn`` naming the rule),
    coupons and a tier grant. A rule's bonus needs no ``money.adjust``; a hand-typed ``bonus`` still does.
    Creates the stored-value prepaid contract. Earns no spend points and no growth value. Audited; the
    member is told (``wallet.recharge``).

    Idempotent per (organisation, key): the same key with the same request returns the first recharge and
    writes nothing; with a different request it is refused with ``idempotency.key_reused``.
    """
    actor.require(Perm.CHECKOUT)
    if bonus.fen > 0 and not actor.can(Perm.MONEY_ADJUST):
        # A hand-typed bonus is money given away: it needs a role that may adjust money (store manager,
        # finance, HQ), not every cashier. A recharge rule's bonus does not.
        raise PermissionDenied(
            "wallet.bonus_not_allowed",
            zh="赠送金额：只有店长、财务或总部可以手工赠送储值。",
            en="bonus: only a store manager, finance or HQ may give a bonus by hand.",
            field="bonus",
        )
    member = member_get(actor, member.pk)
    store = actor.store
    if store is None or store.organisation_id != actor.organisation.pk:
        raise ValidationFailed(
            "wallet.store_required",
            zh="请先选择当前门店再充值。",
            en="Choose the current store before recharging.",
            field="store",
        )
    if not isinstance(amount, Money) or amount.fen <= 0:
        raise _invalid_amount("amount")
    if not isinstance(bonus, Money) or bonus.fen < 0:
        raise ValidationFailed(
            "wallet.invalid_amount",
            zh="赠送金额：不能为负数。",
            en="bonus: must not be negative.",
            field="bonus",
        )
    check_tender(tender)
    external_ref = (external_ref or "").strip()
    if len(external_ref) > 64:
        raise ValidationFailed(
            "input.too_long",
            zh="支付流水号：最多 64 个字符。",
            en="external_ref: at most 64 characters.",
            field="external_ref",
        )
    product = _recharge_product(actor, product)
    key = validate_key(idempotency_key)
    request = {
        "member_id": member.pk,
        "store_id": store.pk,
        "amount_fen": amount.fen,
        "bonus_fen": bonus.fen,
        "tender": tender,
        "external_ref": external_ref,
        "product_id": product.pk if product is not None else None,
        "named": bool(named),
    }
    today = local_today(store)
    with transaction.atomic():
        first = _recharge_replay(actor, key, request)
        if first is not None:
            return first
        rule = recharge_rule_for(product, amount.fen, today)
        plan = bonus_plan(rule, today)
        member_keys = _member_keys(member.pk)
        tender_key = store_account_key(store=store, kind=f"tender_{tender}")
        issued_key = store_account_key(store=store, kind="bonus_issued")
        keys = [*member_keys, tender_key, issued_key]
        if plan.points:
            # Locked with the wallet's, in one statement, so a recharge and a checkout cannot deadlock.
            keys += points_account_keys(member=member, earn=True)
        locked = accounts_lock(organisation_id=member.organisation_id, keys=keys)
        # A concurrent request with the same key may have committed while this one waited on the locks: it is
        # a replay, never a second recharge (nor a cap refusal caused by the first one).
        first = _recharge_replay(actor, key, request)
        if first is not None:
            return first
        principal_account, bonus_account, pending_account = (locked.get(k) for k in member_keys)
        _check_cap(product, named, Money(locked.balance(principal_account)), amount)
        try:
            with transaction.atomic():
                recharge = Recharge.objects.create(
                    organisation=actor.organisation,
                    store=store,
                    member=member,
                    amount_fen=amount.fen,
                    bonus_fen=bonus.fen + plan.now.fen,
                    hand_bonus_fen=bonus.fen,
                    rule_bonus_fen=plan.total.fen,
                    pending_bonus_fen=plan.pending.fen,
                    bonus_points=plan.points,
                    tender=tender,
                    external_ref=external_ref,
                    idempotency_key=key,
                    created_by=actor.staff,
                    product=product,
                    rule=rule,
                    named=bool(named),
                    local_date=today,
                    cooling_off_until=(
                        today + timedelta(days=product.cooling_off_days) if product is not None else None
                    ),
                )
        except IntegrityError:
            # The same key was committed meanwhile by a concurrent request.
            first = _recharge_replay(actor, key, request)
            if first is None:
                raise
            return first
        legs = [Leg(locked.get(tender_key), -amount.fen), Leg(principal_account, amount.fen)]
        given = bonus.fen + plan.total.fen
        if given:
            legs.append(Leg(locked.get(issued_key), -given))
        if bonus.fen + plan.now.fen:
            legs.append(Leg(bonus_account, bonus.fen + plan.now.fen))
        if plan.pending.fen:
            legs.append(Leg(pending_account, plan.pending.fen))
        (recharge.journal,) = journals_post(
            organisation_id=member.organisation_id,
            postings=[
                Posting(
                    code="wallet.recharge",
                    entries=legs,
                    reference_type="wallet.Recharge",
                    reference_id=str(recharge.pk),
                    staff_id=_staff_id(actor),
                    store_id=store.pk,
                    idempotency_key=f"{key}:cny",
                    memo=f"{tender} {external_ref}".strip(),
                )
            ],
            locked=locked,
            keys_claimed=True,  # the recharge row claimed the key in this transaction
        )
        if plan.later:
            BonusInstalment.objects.bulk_create(
                [
                    BonusInstalment(
                        organisation_id=member.organisation_id,
                        recharge=recharge,
                        member=member,
                        store=store,
                        seq=part.seq,
                        due_on=part.due_on,
                        amount_fen=part.amount.fen,
                    )
                    for part in plan.later
                ]
            )
        update = ["journal"]
        skipped: list[str] = []
        if rule is not None:
            update += _rule_extras(actor, member, recharge, rule, plan, key, today, skipped)
        recharge.contract = _recharge_contract(actor, member, store, recharge, product, plan)
        recharge.save(update_fields=[*update, "contract"])
        audit_record(
            actor=actor,
            action="wallet.recharge",
            obj=recharge,
            detail={
                "member": member.member_no,
                "amount": amount.as_decimal_string(),
                "bonus": Money(recharge.bonus_fen).as_decimal_string(),
                "tender": tender,
                **(
                    {
                        "product": product.code,
                        "named": bool(named),
                        "hand_bonus": bonus.as_decimal_string(),
                        "rule": rule.pk if rule is not None else None,
                        "pending_bonus": plan.pending.as_decimal_string(),
                        "points": plan.points,
                    }
                    if product is not None
                    else {}
                ),
                **({"skipped": skipped} if skipped else {}),
            },
        )
        _recharge_notify(actor, member, recharge)
    return recharge


def _recharge_product(actor: Actor, product: CardProduct | None) -> CardProduct | None:
    if product is None:
        return card_product_default(actor.organisation.pk)
    found = CardProduct.objects.filter(organisation=actor.organisation, pk=product.pk).first()
    if found is None:
        raise NotFound(
            "wallet.product_not_found",
            zh="储值卡种类：找不到该卡种。",
            en="product: card product not found.",
            field="product",
        )
    if not found.active:
        raise Conflict(
            "wallet.product_inactive",
            zh=f"储值卡种类：{found.name} 已停用，不能充值。",
            en=f"product: {found.name} is no longer active; it cannot be recharged.",
            field="product",
        )
    return found


def _check_cap(
    product: CardProduct | None, named: bool, principal: Money, amount: Money, *, field: str = "amount"
) -> None:
    """S-16: the principal after the recharge (or a transfer in, ``field="target"``) may not exceed the
    product's cap for a named / anonymous card."""
    if product is None:
        return
    cap_fen = product.named_cap_fen if named else product.anonymous_cap_fen
    if cap_fen is None or principal.fen + amount.fen <= cap_fen:
        return
    cap, room = Money(cap_fen), Money(max(0, cap_fen - principal.fen))
    card_zh, card_en = ("记名卡", "a named card") if named else ("不记名卡", "an anonymous card")
    limit_zh = f"{product.name}{card_zh}本金上限为 {cap.as_decimal_string()}"
    limit_en = f"the principal of {card_en} of {product.name} is capped at {cap.as_decimal_string()}"
    if field == "target":
        zh = (
            f"转入会员：{limit_zh}，转入会员当前本金 {principal.as_decimal_string()}，最多还能转入 "
            f"{room.as_decimal_string()}，本次转入本金 {amount.as_decimal_string()} 超出上限。"
        )
        en = (
            f"target: {limit_en}; the target member holds {principal.as_decimal_string()}, so at most "
            f"{room.as_decimal_string()} more may be transferred in, not {amount.as_decimal_string()}."
        )
    else:
        zh = (
            f"充值金额：{limit_zh}，当前本金 {principal.as_decimal_string()}，最多还能充 {room.as_decimal_string()}，"
            f"本次 {amount.as_decimal_string()} 超出上限。"
        )
        en = (
            f"amount: {limit_en}; it holds {principal.as_decimal_string()}, so at most {room.as_decimal_string()} "
            f"more may be recharged, not {amount.as_decimal_string()}."
        )
    raise ApplicationError(
        "wallet.cap_exceeded",
        zh=zh,
        en=en,
        field=field,
        extra={
            "cap": cap.as_decimal_string(),
            "cap_fen": cap.fen,
            "room": room.as_decimal_string(),
            "room_fen": room.fen,
            "principal_fen": principal.fen,
            "amount_fen": amount.fen,
            "named": named,
        },
    )


def _rule_extras(
    actor: Actor,
    member: Member,
    recharge: Recharge,
    rule: RechargeRule,
    plan: BonusPlan,
    key: str,
    today: date,
    skipped: list[str],
) -> list[str]:
    """The rule's points, coupons and tier, in the recharge's transaction. Returns the fields to save.

    Points: a ``points.earn`` journal whose lot's source names the rule (the points a recharge earns are only
    these: no spend points, no growth). A coupon or tier the rule cannot give (template stopped, member's
    limit reached, …) does not stop the recharge: it is left out and named in the audit row."""
    update: list[str] = []
    if plan.points:
        lot = points_earn(
            actor=actor,
            member=member,
            points=plan.points,
            source_code=f"wallet.recharge_rule:{rule.pk}",
            reference_type="wallet.Recharge",
            reference_id=str(recharge.pk),
            idempotency_key=f"{key}:pts",
            earned_on=today,
        )
        if lot is not None:
            recharge.points_journal = lot.journal
            update.append("points_journal")
    template = rule.coupon_template
    if template is not None and rule.coupon_count:
        for index in range(rule.coupon_count):
            try:
                with transaction.atomic():
                    coupon_issue(
                        actor=actor,
                        member=member,
                        template=template,
                        source=f"recharge:{recharge.pk}",
                        idempotency_key=f"{key}:coupon:{index + 1}",
                        on=today,
                    )
            except ApplicationError as exc:
                skipped.append(f"coupon {index + 1}: {exc.code}")
                break
    if rule.grant_tier is not None:
        try:
            with transaction.atomic():
                # The rule grants the tier, not the cashier: she needs no money.adjust for it (audited below
                # and in the recharge's own audit row).
                tier_grant(
                    actor=_on_behalf(actor),
                    member=member,
                    tier=rule.grant_tier,
                    until=add_months(today, rule.grant_months) - timedelta(days=1),
                    reason=f"充值规则 {rule_label(rule)} / recharge rule, recharge #{recharge.pk}",
                )
        except ApplicationError as exc:
            skipped.append(f"tier: {exc.code}")
    return update


def _recharge_contract(
    actor: Actor, member: Member, store: Store, recharge: Recharge, product: CardProduct | None, plan: BonusPlan
) -> Contract:
    name = product.name if product is not None else "储值"
    cooling = product.cooling_off_days if product is not None else 0
    detail = {
        "zh-hans": f"本金 {Money(recharge.amount_fen).as_decimal_string()}",
        "en": f"Principal {Money(recharge.amount_fen).as_decimal_string()}",
    }
    if recharge.bonus_fen or plan.pending.fen:
        described = plan.describe()
        detail = {
            "zh-hans": f"{detail['zh-hans']}；赠送 {Money(recharge.bonus_fen + plan.pending.fen).as_decimal_string()}（{described['zh-hans']}）",
            "en": f"{detail['en']}; bonus {Money(recharge.bonus_fen + plan.pending.fen).as_decimal_string()} ({described['en']})",
        }
    refund = {
        "zh-hans": "退卡时退还剩余本金，已到账及待到账的赠送金不予退还。",
        "en": "On closing, the remaining principal is refunded; bonus, released or pending, is not.",
    }
    if cooling:
        refund = {
            "zh-hans": f"充值后 {cooling} 天内（冷静期，至 {recharge.cooling_off_until}）未消费的，可全额退还本次充值本金。"
            + refund["zh-hans"],
            "en": f"Within {cooling} days of the recharge (cooling-off, until {recharge.cooling_off_until}), a recharge "
            "nothing was spent from is refunded in full. " + refund["en"],
        }
    return contract_create(
        actor=actor,
        member=member,
        store=store,
        kind=ContractKind.STORED_VALUE,
        reference_type="wallet.Recharge",
        reference_id=recharge.pk,
        price_fen=recharge.amount_fen,
        items=[ContractItem(name=f"{name}充值" if product is not None else "储值充值", quantity=1, detail=detail)],
        validity={"zh-hans": "长期有效", "en": "No expiry"},
        refund_method=refund,
        terms=product.terms if product is not None else "",
    )


def _recharge_notify(actor: Actor, member: Member, recharge: Recharge) -> None:
    """Tell the member (event ``wallet.recharge``), in the recharge's transaction: stored with it, sent
    after it commits, nothing if it rolls back. Once per recharge (the key names it); a refused message
    never undoes the recharge."""
    balance = wallet_balance(member)
    with contextlib.suppress(ApplicationError):
        notify_event(
            actor=actor,
            member=member,
            event=WALLET_RECHARGE,
            context={
                "amount_fen": recharge.amount_fen,
                "balance_fen": balance.total.fen,
                "bonus_fen": recharge.bonus_fen,
            },
            idempotency_key=f"{WALLET_RECHARGE}:{recharge.pk}",
        )


def _recharge_replay(actor: Actor, key: str, request: dict[str, Any]) -> Recharge | None:
    first = Recharge.objects.filter(organisation=actor.organisation, idempotency_key=key).first()
    if first is None:
        return None
    recorded = {
        "member_id": first.member_id,
        "store_id": first.store_id,
        "amount_fen": first.amount_fen,
        "bonus_fen": first.hand_bonus_fen,
        "tender": first.tender,
        "external_ref": first.external_ref,
        "product_id": first.product_id,
        "named": first.named,
    }
    if recorded != request:
        raise conflict_error(key)
    return first


# --- Bonus instalments: the daily release ----------------------------------------------------------------

RELEASE_BATCH = 2_000


def wallet_bonus_release_due(
    *,
    on: date,
    organisation_id: int | None = None,
    batch_size: int = RELEASE_BATCH,
    progress: Callable[[int], None] | None = None,
    notify: bool = True,
) -> int:
    """The daily job: release every pending bonus instalment due on or before ``on``. Returns how many.

    Set-based, in batches of ``batch_size`` instalments (by primary key), one transaction each: lock the
    members' pending and bonus balance rows (primary-key order, one statement), re-read the batch's
    instalments still pending under those locks, post one ``wallet.bonus_release`` journal per instalment
    (member pending −x, member bonus +x; key ``wallet.bonus_release:<instalment>``) in one ``journals_post``,
    and mark them released with one UPDATE. Idempotent: a released instalment is no longer pending, so a
    second run (or a concurrent one, which waits on the locks) releases nothing more; a run that stopped
    half-way resumes with the batches it had not committed. ``notify``: one ``wallet.bonus_released`` message
    per member and day. ``progress`` is told each batch's size.

    An instalment moved to another member (a transfer or merge) after the batch was read is left for the next
    run; a batch that fails is rolled back, logged, and the run goes on with the next one (its instalments
    stay pending and are released by a later run).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    due = BonusInstalment.objects.filter(status=InstalmentStatus.PENDING, due_on__lte=on)
    if organisation_id is not None:
        due = due.filter(organisation_id=organisation_id)
    released = 0
    after = 0
    while True:
        rows = list(
            due.filter(pk__gt=after).order_by("pk").values_list("pk", "organisation_id", "member_id")[:batch_size]
        )
        if not rows:
            break
        after = rows[-1][0]
        by_org: dict[int, list[tuple[int, int]]] = {}
        for pk, org_id, member_id in rows:
            by_org.setdefault(org_id, []).append((pk, member_id))
        for org_id, items in sorted(by_org.items()):
            try:
                released += _release_batch(org_id, items, on, notify)
            except Exception:
                # One organisation's bad batch must not stop the day's run for everyone else.
                logger.exception(
                    "wallet.bonus_release: batch of %d instalments of organisation %s failed (first #%s, on %s)",
                    len(items),
                    org_id,
                    items[0][0],
                    on.isoformat(),
                )
        if progress is not None:
            progress(len(rows))
    return released


def _release_batch(organisation_id: int, items: list[tuple[int, int]], on: date, notify: bool) -> int:
    member_ids = sorted({member_id for _pk, member_id in items})
    with transaction.atomic():
        locked = _lock_wallets_of(organisation_id, member_ids)
        # Only the instalments still held by the members locked above: one moved to another member since the
        # batch was read (transfer, merge) has its pending bonus in an account not locked here; the next run
        # releases it.
        instalments = list(
            BonusInstalment.objects.select_for_update()
            .filter(
                pk__in=[pk for pk, _m in items],
                member_id__in=member_ids,
                status=InstalmentStatus.PENDING,
                due_on__lte=on,
            )
            .order_by("pk")
        )
        if not instalments:
            return 0
        postings = []
        for inst in instalments:
            pending_key, bonus_key = (
                AccountKey("member", inst.member_id, CNY, PENDING),
                AccountKey("member", inst.member_id, CNY, BONUS),
            )
            postings.append(
                Posting(
                    code="wallet.bonus_release",
                    entries=[
                        Leg(locked.get(pending_key), -inst.amount_fen),
                        Leg(locked.get(bonus_key), inst.amount_fen),
                    ],
                    reference_type="wallet.BonusInstalment",
                    reference_id=str(inst.pk),
                    store_id=inst.store_id,
                    idempotency_key=f"wallet.bonus_release:{inst.pk}",
                    memo=f"part {inst.seq} of recharge #{inst.recharge_id}, due {inst.due_on.isoformat()}",
                )
            )
        # The instalments were re-read as pending under the members' locks, so none was released before:
        # their keys cannot be in use (the unique index still refuses a duplicate).
        journals = journals_post(organisation_id=organisation_id, postings=postings, locked=locked, keys_claimed=True)
        _mark_released([(inst.pk, journal.pk) for inst, journal in zip(instalments, journals, strict=True)])
        if notify:
            _release_notify(organisation_id, instalments, locked, on)
    return len(instalments)


def _mark_released(pairs: list[tuple[int, int]]) -> None:
    """Mark instalments released with their journals: one UPDATE per 400 (a CASE on the primary key;
    hand-written because ``bulk_update`` builds the same CASE through the ORM at several ms a row)."""
    table = connection.ops.quote_name(BonusInstalment._meta.db_table)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        for start in range(0, len(pairs), 400):
            part = pairs[start : start + 400]
            whens = " ".join(["WHEN %s THEN %s"] * len(part))
            cursor.execute(
                f"UPDATE {table} SET status = %s, settled_at = %s, journal_id = CASE id {whens} END "  # noqa: S608
                f"WHERE id IN ({', '.join(['%s'] * len(part))})",
                [
                    InstalmentStatus.RELEASED.value,
                    now,
                    *(value for pair in part for value in pair),
                    *(pk for pk, _journal in part),
                ],
            )


def _release_notify(organisation_id: int, instalments: list[BonusInstalment], locked: LockedAccounts, on: date) -> None:
    amounts: dict[int, int] = {}
    for inst in instalments:
        amounts[inst.member_id] = amounts.get(inst.member_id, 0) + inst.amount_fen
    members = {m.pk: m for m in Member.objects.filter(pk__in=amounts)}
    organisation = members[next(iter(amounts))].organisation if amounts else None
    if organisation is None:
        return
    actor = Actor.system(organisation)
    for member_id, amount_fen in sorted(amounts.items()):
        balance = sum(
            locked.balance(locked.get(AccountKey("member", member_id, CNY, kind))) for kind in (PRINCIPAL, BONUS)
        )
        remaining = locked.balance(locked.get(AccountKey("member", member_id, CNY, PENDING)))
        with contextlib.suppress(ApplicationError):
            notify_event(
                actor=actor,
                member=members[member_id],
                event=WALLET_BONUS_RELEASED,
                context={"amount_fen": amount_fen, "balance_fen": balance, "remaining_fen": remaining},
                idempotency_key=f"{WALLET_BONUS_RELEASED}:{member_id}:{on.isoformat()}",
            )


def _lock_wallets_of(organisation_id: int, member_ids: Sequence[int]) -> LockedAccounts:
    """Lock the members' principal, bonus and pending balance rows in primary-key order by account id (one
    ``SELECT … FOR UPDATE`` per 5,000), creating any that is missing first (like ``loyalty``'s expiry job:
    by id, because ``accounts_lock``'s one OR term per account plans slowly for thousands)."""
    kinds = (PRINCIPAL, BONUS, PENDING)
    found = {
        (owner_id, kind): pk
        for pk, owner_id, kind in Account.objects.filter(
            organisation_id=organisation_id, owner_type="member", owner_id__in=member_ids, asset=CNY, kind__in=kinds
        ).values_list("pk", "owner_id", "kind")
    }
    for member_id in member_ids:
        for kind in kinds:
            if (member_id, kind) not in found:
                found[(member_id, kind)] = account_get_or_create(
                    organisation_id=organisation_id, owner_type="member", owner_id=member_id, asset=CNY, kind=kind
                ).pk
    locked = LockedAccounts(organisation_id=organisation_id)
    ids = sorted(found.values())
    for start in range(0, len(ids), 5_000):
        for balance in (
            Balance.objects.select_for_update(of=("self",))
            .select_related("account")
            .filter(account_id__in=ids[start : start + 5_000])
            .order_by("account_id")
        ):
            account = balance.account
            locked.accounts[(account.owner_type, account.owner_id, account.asset, account.kind)] = account
            locked.balances[account.pk] = balance
    return locked


# --- Cooling-off refund, closing refund, transfer -------------------------------------------------------------


def wallet_recharge_refund(
    *, actor: Actor, recharge: Recharge, tender: str, idempotency_key: str, reason: str
) -> Recharge:
    """Refund a recharge in full within its product's cooling-off period (S-14): one
    ``wallet.recharge_refund`` journal — member principal −amount, store ``tender_<tender>`` +amount (the
    acting store pays it out); the bonus it gave, released (with the recharge and by instalments since) and
    pending, goes back to the recharge store's ``bonus_issued``; pending instalments are cancelled; the rule's
    points are taken back (``points_take_back``: a debt if she spent them) and its unused coupons voided.
    Needs ``prepaid.refund``; audited.

    Refused:
    - ``wallet.cooling_off_over``: the store local date is after ``cooling_off_until`` (the recharge's local
      date + the product's ``cooling_off_days``; a recharge without a product has no cooling-off period);
    - ``wallet.recharge_used``: anything left the member's principal or bonus after the recharge — any
      ledger entry taking money out of either account in a journal posted after the recharge's (a payment,
      even one refunded since, a close, a transfer, another recharge's refund);
    - ``wallet.recharge_merged``: the recharge was made by a member merged into this one since (her own
      spending is not in this member's accounts, so "nothing spent since" cannot be checked; ``wallet_merge``
      also ends the cooling-off of the recharges it moves);
    - ``wallet.recharge_refunded``: refunded already (the same key with the same tender and reason returns the
      refunded recharge; with another tender or reason, ``idempotency.key_reused``).
    """
    actor.require(Perm.PREPAID_REFUND)
    check_tender(tender)
    reason = _check_reason(reason)
    key = validate_key(idempotency_key)
    found = Recharge.objects.filter(organisation=actor.organisation, pk=recharge.pk).select_related("store").first()
    if found is None:
        raise NotFound("wallet.recharge_not_found", zh="找不到该充值记录。", en="Recharge not found.", field="recharge")
    member = member_get(actor, found.member_id)
    store = _require_store(actor)
    journal_key = f"{key}:refund"
    with transaction.atomic():
        recharge = (
            Recharge.objects.select_for_update(of=("self",))
            .select_related("store", "refund_journal", "points_journal")
            .get(pk=found.pk)
        )
        if recharge.refund_journal is not None:
            if recharge.refund_journal.idempotency_key == journal_key:
                if (recharge.refund_tender, recharge.refund_reason) != (tender, reason):
                    raise conflict_error(key)
                return recharge
            raise Conflict(
                "wallet.recharge_refunded",
                zh=f"充值 #{recharge.pk} 已于 {recharge.refunded_at:%Y-%m-%d} 退款，不能重复退款。",
                en=f"Recharge #{recharge.pk} was refunded on {recharge.refunded_at:%Y-%m-%d}; it cannot be refunded again.",
                field="recharge",
            )
        if _recharge_moved_by_merge(recharge, member):
            raise Conflict(
                "wallet.recharge_merged",
                zh=(
                    f"充值 #{recharge.pk}：该充值由已合并到本会员的另一会员账户办理，无法核实充值后是否有消费，"
                    "不能冷静期退款，请使用退卡结清。"
                ),
                en=(
                    f"recharge #{recharge.pk}: it was made by a member merged into this one since, so whether "
                    "anything was spent from it cannot be checked; the cooling-off refund is not possible — close "
                    "the card instead."
                ),
                field="recharge",
            )
        today = local_today(recharge.store)
        if recharge.cooling_off_until is None or today > recharge.cooling_off_until:
            until = recharge.cooling_off_until.isoformat() if recharge.cooling_off_until else "—"
            raise Conflict(
                "wallet.cooling_off_over",
                zh=f"充值 #{recharge.pk}：冷静期已于 {until} 结束（今天 {today.isoformat()}），不能全额退款，请使用退卡结清。",
                en=(
                    f"recharge #{recharge.pk}: the cooling-off period ended on {until} (today is {today.isoformat()}); "
                    "it cannot be refunded in full — close the card instead."
                ),
                field="recharge",
                extra={
                    "cooling_off_until": recharge.cooling_off_until.isoformat() if recharge.cooling_off_until else None,
                    "today": today.isoformat(),
                },
            )
        member_keys = _member_keys(member.pk)
        tender_key = store_account_key(store=store, kind=f"tender_{tender}")
        issued_key = store_account_key(store=recharge.store, kind="bonus_issued")
        locked = accounts_lock(organisation_id=member.organisation_id, keys=[*member_keys, tender_key, issued_key])
        principal_account, bonus_account, pending_account = (locked.get(k) for k in member_keys)
        if Entry.objects.filter(
            account_id__in=[principal_account.pk, bonus_account.pk], amount__lt=0, journal_id__gt=recharge.journal_id
        ).exists():
            raise Conflict(
                "wallet.recharge_used",
                zh=f"充值 #{recharge.pk}：充值后储值已有消费或转出，不能冷静期退款，请使用退卡结清。",
                en=(
                    f"recharge #{recharge.pk}: stored value was spent or moved since this recharge, so the "
                    "cooling-off refund is not possible — close the card instead."
                ),
                field="recharge",
            )
        instalments = list(BonusInstalment.objects.select_for_update().filter(recharge=recharge).order_by("pk"))
        pending = sum(i.amount_fen for i in instalments if i.status == InstalmentStatus.PENDING)
        released = sum(i.amount_fen for i in instalments if i.status == InstalmentStatus.RELEASED)
        bonus_back = recharge.bonus_fen + released
        legs = [Leg(principal_account, -recharge.amount_fen), Leg(locked.get(tender_key), recharge.amount_fen)]
        if bonus_back:
            legs.append(Leg(bonus_account, -bonus_back))
        if pending:
            legs.append(Leg(pending_account, -pending))
        if bonus_back + pending:
            legs.append(Leg(locked.get(issued_key), bonus_back + pending))
        (journal,) = journals_post(
            organisation_id=member.organisation_id,
            postings=[
                Posting(
                    code="wallet.recharge_refund",
                    entries=legs,
                    reference_type="wallet.Recharge",
                    reference_id=str(recharge.pk),
                    staff_id=_staff_id(actor),
                    store_id=store.pk,
                    idempotency_key=journal_key,
                    memo=reason[:255],
                )
            ],
            locked=locked,
        )
        now = timezone.now()
        BonusInstalment.objects.filter(pk__in=[i.pk for i in instalments], status=InstalmentStatus.PENDING).update(
            status=InstalmentStatus.CANCELLED, journal=journal, settled_at=now
        )
        recharge.refund_journal, recharge.refund_tender, recharge.refund_reason = journal, tender, reason
        recharge.refunded_by, recharge.refunded_at = actor.staff, now
        recharge.save(update_fields=["refund_journal", "refund_tender", "refund_reason", "refunded_by", "refunded_at"])
        points_back = 0
        if recharge.points_journal is not None:
            points_take_back(
                actor=_on_behalf(actor), earn_journal=recharge.points_journal, idempotency_key=f"{key}:pts"
            )
            points_back = recharge.bonus_points
        voided = []
        for coupon in Coupon.objects.filter(
            organisation=actor.organisation, source=f"recharge:{recharge.pk}", status=CouponStatus.ACTIVE
        ).order_by("pk"):
            coupon_void(actor=_on_behalf(actor), coupon=coupon, reason=f"充值 #{recharge.pk} 冷静期退款 / refunded")
            voided.append(coupon.pk)
        audit_record(
            actor=actor,
            action="wallet.recharge_refund",
            obj=recharge,
            detail={
                "member": member.member_no,
                "principal": Money(recharge.amount_fen).as_decimal_string(),
                "bonus_cancelled": Money(bonus_back).as_decimal_string(),
                "pending_cancelled": Money(pending).as_decimal_string(),
                "points_taken_back": points_back,
                "coupons_voided": voided,
                "tender": tender,
                "reason": reason,
            },
        )
    return recharge


def _recharge_moved_by_merge(recharge: Recharge, member: Member) -> bool:
    """Whether the recharge's principal went into another member's account than ``member``'s (the recharge
    was moved to her by a member merge). The ledger keeps the original member: no extra column needed."""
    if recharge.journal_id is None:
        return False
    return (
        Entry.objects.filter(journal_id=recharge.journal_id, account__owner_type="member", account__kind=PRINCIPAL)
        .exclude(account__owner_id=member.pk)
        .exists()
    )


def wallet_close(*, actor: Actor, member: Member, tender: str, idempotency_key: str, reason: str) -> WalletClosure:
    """Close the member's stored value with a refund (退卡结清, S-15): one ``wallet.close`` journal — member
    principal −P, store ``tender_<tender>`` +P (P paid back); member bonus −B, store ``bonus_forfeited`` +B
    (the released bonus is forfeited); member pending −X, the recharge stores' ``bonus_issued`` +X (pending
    instalments cancelled). Needs ``prepaid.refund``; audited. Refused ``wallet.nothing_to_close`` when all
    three are zero. Idempotent per key (a replay with the same member, tender and reason returns the first
    closure; anything else is ``idempotency.key_reused``). Points and the tier she has keep."""
    actor.require(Perm.PREPAID_REFUND)
    check_tender(tender)
    reason = _check_reason(reason)
    key = validate_key(idempotency_key)
    member = member_get(actor, member.pk)
    store = _require_store(actor)
    with transaction.atomic():
        first = _closure_replay(actor, key, member, tender, reason)
        if first is not None:
            return first
        pending_stores = sorted(
            set(
                BonusInstalment.objects.filter(member=member, status=InstalmentStatus.PENDING).values_list(
                    "store_id", flat=True
                )
            )
        )
        stores = {s.pk: s for s in Store.objects.filter(pk__in=[*pending_stores, store.pk])}
        member_keys = _member_keys(member.pk)
        tender_key = store_account_key(store=store, kind=f"tender_{tender}")
        forfeit_key = store_account_key(store=store, kind="bonus_forfeited")
        issued_keys = {pk: store_account_key(store=stores[pk], kind="bonus_issued") for pk in pending_stores}
        locked = accounts_lock(
            organisation_id=member.organisation_id,
            keys=[*member_keys, tender_key, forfeit_key, *issued_keys.values()],
        )
        principal_account, bonus_account, pending_account = (locked.get(k) for k in member_keys)
        principal, bonus, pending = (locked.balance(a) for a in (principal_account, bonus_account, pending_account))
        instalments = list(
            BonusInstalment.objects.select_for_update()
            .filter(member=member, status=InstalmentStatus.PENDING)
            .order_by("pk")
        )
        by_store: dict[int, int] = {}
        for inst in instalments:
            by_store[inst.store_id] = by_store.get(inst.store_id, 0) + inst.amount_fen
        if sum(by_store.values()) != pending or not set(by_store) <= set(issued_keys):
            raise ApplicationError(
                "wallet.pending_out_of_step",
                zh="待到账赠送金与分期记录不一致，请稍后重试或联系管理员。",
                en="The pending bonus does not match its instalments; try again or report it.",
                extra={"pending_fen": pending, "instalments_fen": sum(by_store.values())},
            )
        if not (principal or bonus or pending):
            raise Conflict(
                "wallet.nothing_to_close",
                zh="该会员没有储值本金、赠送金或待到账赠送金，无需退卡结清。",
                en="The member holds no principal, bonus or pending bonus; there is nothing to close.",
                field="member",
            )
        try:
            with transaction.atomic():
                closure = WalletClosure.objects.create(
                    organisation=actor.organisation,
                    store=store,
                    member=member,
                    principal_fen=principal,
                    bonus_forfeited_fen=bonus,
                    pending_cancelled_fen=pending,
                    tender=tender,
                    reason=reason,
                    idempotency_key=key,
                    created_by=actor.staff,
                )
        except IntegrityError:
            first = _closure_replay(actor, key, member, tender, reason)
            if first is None:
                raise
            return first
        legs: list[Leg] = []
        if principal:
            legs += [Leg(principal_account, -principal), Leg(locked.get(tender_key), principal)]
        if bonus:
            legs += [Leg(bonus_account, -bonus), Leg(locked.get(forfeit_key), bonus)]
        if pending:
            legs.append(Leg(pending_account, -pending))
            legs += [Leg(locked.get(issued_keys[pk]), part) for pk, part in sorted(by_store.items())]
        (closure.journal,) = journals_post(
            organisation_id=member.organisation_id,
            postings=[
                Posting(
                    code="wallet.close",
                    entries=legs,
                    reference_type="wallet.WalletClosure",
                    reference_id=str(closure.pk),
                    staff_id=_staff_id(actor),
                    store_id=store.pk,
                    idempotency_key=f"{key}:cny",
                    memo=reason[:255],
                )
            ],
            locked=locked,
            keys_claimed=True,
        )
        closure.save(update_fields=["journal"])
        BonusInstalment.objects.filter(pk__in=[i.pk for i in instalments]).update(
            status=InstalmentStatus.CANCELLED, journal=closure.journal, settled_at=timezone.now()
        )
        audit_record(
            actor=actor,
            action="wallet.close",
            obj=closure,
            detail={
                "member": member.member_no,
                "principal_refunded": Money(principal).as_decimal_string(),
                "bonus_forfeited": Money(bonus).as_decimal_string(),
                "pending_cancelled": Money(pending).as_decimal_string(),
                "tender": tender,
                "reason": reason,
            },
        )
    return closure


def _closure_replay(actor: Actor, key: str, member: Member, tender: str, reason: str) -> WalletClosure | None:
    first = WalletClosure.objects.filter(organisation=actor.organisation, idempotency_key=key).first()
    if first is None:
        return None
    if (first.member_id, first.tender, first.reason) != (member.pk, tender, reason):
        raise conflict_error(key)
    return first


def wallet_transfer(*, actor: Actor, source: Member, target: Member, idempotency_key: str, reason: str) -> Journal:
    """Move the source member's whole principal, bonus and pending bonus (with her pending instalments) to the
    target member: one ``wallet.transfer`` journal. Needs ``prepaid.refund``; audited. The card layer decides
    whether a transfer is allowed. Refused ``wallet.transfer_same_member``, ``wallet.nothing_to_transfer`` and
    ``wallet.cap_exceeded`` (field ``target``: her principal after the transfer would exceed the cap of her
    product — her live card's, from ``TARGET_PRODUCT_SOURCES``, else the organisation's default on a named
    card; nothing written). A replay with the same key, target and reason returns the first journal."""
    actor.require(Perm.PREPAID_REFUND)
    reason = _check_reason(reason)
    key = validate_key(idempotency_key)
    source = member_get(actor, source.pk)
    target = member_get(actor, target.pk)
    if source.pk == target.pk:
        raise ValidationFailed(
            "wallet.transfer_same_member",
            zh="转入会员：不能与转出会员相同。",
            en="target: must be another member than the source.",
            field="target",
        )
    journal_key = f"{key}:transfer"
    with transaction.atomic():
        first = journal_by_idempotency_key(organisation_id=source.organisation_id, key=journal_key)
        if first is not None:
            if (first.code, first.reference_id, first.memo) != (
                "wallet.transfer",
                str(source.pk),
                _transfer_memo(target, reason),
            ):
                raise conflict_error(key)
            return first
        product, named = _target_product(target)
        source_keys, target_keys = _member_keys(source.pk), _member_keys(target.pk)
        locked = accounts_lock(organisation_id=source.organisation_id, keys=[*source_keys, *target_keys])
        amounts = [locked.balance(locked.get(k)) for k in source_keys]
        if amounts[0]:
            _check_cap(
                product, named, Money(locked.balance(locked.get(target_keys[0]))), Money(amounts[0]), field="target"
            )
        if not any(amounts):
            raise Conflict(
                "wallet.nothing_to_transfer",
                zh=f"会员 {source.member_no} 没有可转移的储值。",
                en=f"Member {source.member_no} holds no stored value to transfer.",
                field="source",
            )
        legs: list[Leg] = []
        for s_key, t_key, amount in zip(source_keys, target_keys, amounts, strict=True):
            if amount:
                legs += [Leg(locked.get(s_key), -amount), Leg(locked.get(t_key), amount)]
        (journal,) = journals_post(
            organisation_id=source.organisation_id,
            postings=[
                Posting(
                    code="wallet.transfer",
                    entries=legs,
                    reference_type="members.Member",
                    reference_id=str(source.pk),
                    staff_id=_staff_id(actor),
                    store_id=actor.store.pk if actor.store is not None else None,
                    idempotency_key=journal_key,
                    memo=_transfer_memo(target, reason),
                )
            ],
            locked=locked,
        )
        moved = BonusInstalment.objects.filter(member=source, status=InstalmentStatus.PENDING).update(member=target)
        audit_record(
            actor=actor,
            action="wallet.transfer",
            obj=source,
            detail={
                "source": source.member_no,
                "target": target.member_no,
                "principal": Money(amounts[0]).as_decimal_string(),
                "bonus": Money(amounts[1]).as_decimal_string(),
                "pending": Money(amounts[2]).as_decimal_string(),
                "instalments": moved,
                "reason": reason,
            },
        )
    return journal


def _transfer_memo(target: Member, reason: str) -> str:
    return f"→#{target.pk} {reason}"[:255]


def _target_product(member: Member) -> tuple[CardProduct | None, bool]:
    """The card product (and named or not) whose cap applies to ``member``'s principal: her live card's (the
    card layer answers through ``TARGET_PRODUCT_SOURCES``), else the organisation's default, named."""
    for source in TARGET_PRODUCT_SOURCES:
        found = source(member)
        if found is not None:
            return found
    return card_product_default(member.organisation_id), True


# --- Card products and recharge rules (HQ settings) -----------------------------------------------------------


@dataclass
class CardProductInput:
    code: str
    name: str
    named_cap_fen: int | None = None
    anonymous_cap_fen: int | None = None
    cooling_off_days: int = 7
    terms: str = ""
    is_default: bool = False
    active: bool = True


@dataclass
class RechargeRuleInput:
    threshold_fen: int
    bonus_fen: int = 0
    instalments: int = 1
    bonus_points: int = 0
    name: str = ""
    coupon_template_id: int | None = None
    coupon_count: int = 0
    grant_tier_id: int | None = None
    grant_months: int = 12
    active: bool = True
    starts_on: date | None = None
    ends_on: date | None = None


MAX_FEN = 10**12  # 100 亿元: far beyond any card, far inside the ledger's limit


def card_product_input(product: CardProduct) -> CardProductInput:
    """What ``product`` holds now, as the input that saves it unchanged (edit forms, API PATCH)."""
    return CardProductInput(
        code=product.code,
        name=product.name,
        named_cap_fen=product.named_cap_fen,
        anonymous_cap_fen=product.anonymous_cap_fen,
        cooling_off_days=product.cooling_off_days,
        terms=product.terms,
        is_default=product.is_default,
        active=product.active,
    )


def card_product_save(*, actor: Actor, data: CardProductInput, product: CardProduct | None = None) -> CardProduct:
    """Create or update a card product (HQ, ``cards.manage``; audited). The code is fixed once created; making
    a product the default takes the mark from the previous default."""
    actor.require(Perm.CARDS_MANAGE)
    code = (data.code or "").strip().lower()
    if not _SLUG.fullmatch(code):
        raise _invalid("code", "代码：1 到 32 个小写字母、数字、- 或 _。", "1 to 32 lowercase letters, digits, - or _.")
    name = (data.name or "").strip()
    if not name or len(name) > 60:
        raise _invalid("name", "名称：需要 1 到 60 个字符。", "1 to 60 characters.")
    for field_name, value in (("named_cap_fen", data.named_cap_fen), ("anonymous_cap_fen", data.anonymous_cap_fen)):
        if value is not None and not 0 < value <= MAX_FEN:
            raise _invalid(field_name, "本金上限：必须大于 0（留空表示不限）。", "must be more than 0 (empty: no cap).")
    if not 0 <= data.cooling_off_days <= 365:
        raise _invalid("cooling_off_days", "冷静期：0 到 365 天。", "0 to 365 days.")
    if len(data.terms or "") > 4000:
        raise _invalid("terms", "合同补充条款：最多 4000 个字符。", "at most 4000 characters.")
    with transaction.atomic():
        if product is not None:
            product = (
                CardProduct.objects.select_for_update().filter(organisation=actor.organisation, pk=product.pk).first()
            )
            if product is None:
                raise NotFound("wallet.product_not_found", zh="找不到该储值卡种类。", en="Card product not found.")
            if code != product.code:
                raise _invalid("code", "代码：保存后不能修改。", "cannot be changed once saved.")
            before = card_product_input(product).__dict__
        else:
            if CardProduct.objects.filter(organisation=actor.organisation, code=code).exists():
                raise Conflict(
                    "wallet.product_code_taken",
                    zh=f"代码：{code} 已被其他卡种使用。",
                    en=f"code: {code} is already used by another card product.",
                    field="code",
                )
            product = CardProduct(organisation=actor.organisation, code=code)
            before = None
        if data.is_default:
            CardProduct.objects.filter(organisation=actor.organisation, is_default=True).exclude(pk=product.pk).update(
                is_default=False
            )
        product.name, product.named_cap_fen, product.anonymous_cap_fen = (
            name,
            data.named_cap_fen,
            data.anonymous_cap_fen,
        )
        product.cooling_off_days, product.terms = data.cooling_off_days, (data.terms or "").strip()
        product.is_default, product.active = bool(data.is_default), bool(data.active)
        product.save()
        audit_record(
            actor=actor,
            action="wallet.card_product_save",
            obj=product,
            detail={"before": before, "after": card_product_input(product).__dict__},
        )
    return product


def recharge_rule_input(rule: RechargeRule) -> RechargeRuleInput:
    return RechargeRuleInput(
        threshold_fen=rule.threshold_fen,
        bonus_fen=rule.bonus_fen,
        instalments=rule.instalments,
        bonus_points=rule.bonus_points,
        name=rule.name,
        coupon_template_id=rule.coupon_template_id,
        coupon_count=rule.coupon_count,
        grant_tier_id=rule.grant_tier_id,
        grant_months=rule.grant_months,
        active=rule.active,
        starts_on=rule.starts_on,
        ends_on=rule.ends_on,
    )


def recharge_rule_save(
    *, actor: Actor, product: CardProduct, data: RechargeRuleInput, rule: RechargeRule | None = None
) -> RechargeRule:
    """Create or update a recharge rule of ``product`` (HQ, ``cards.manage``; audited). A rule is never deleted
    (recharges name it): switch it off with ``active=False``. A change applies to later recharges only."""
    actor.require(Perm.CARDS_MANAGE)
    product_row = CardProduct.objects.filter(organisation=actor.organisation, pk=product.pk).first()
    if product_row is None:
        raise NotFound(
            "wallet.product_not_found", zh="找不到该储值卡种类。", en="Card product not found.", field="product"
        )
    if not 0 < data.threshold_fen <= MAX_FEN:
        raise _invalid("threshold", "充值满：必须大于 0。", "must be more than 0.")
    if not 0 <= data.bonus_fen <= MAX_FEN:
        raise _invalid("bonus", "赠送金额：不能为负数。", "must not be negative.")
    if not 1 <= data.instalments <= 60:
        raise _invalid("instalments", "分期月数：1 到 60（1 表示一次到账）。", "1 to 60 (1: all at once).")
    if not 0 <= data.bonus_points <= 10_000_000:
        raise _invalid("bonus_points", "赠送积分：0 到 10,000,000。", "0 to 10,000,000.")
    if not 0 <= data.coupon_count <= 20:
        raise _invalid("coupon_count", "赠券张数：0 到 20。", "0 to 20.")
    if data.coupon_count and data.coupon_template_id is None:
        raise _invalid(
            "coupon_template", "优惠券：赠券张数大于 0 时必须选择优惠券。", "choose a coupon when coupons are given."
        )
    if not 1 <= data.grant_months <= 120:
        raise _invalid("grant_months", "等级月数：1 到 120。", "1 to 120 months.")
    if data.starts_on and data.ends_on and data.ends_on < data.starts_on:
        raise _invalid("ends_on", "结束日期：不能早于开始日期。", "must not be before the start date.")
    name = (data.name or "").strip()
    if len(name) > 60:
        raise _invalid("name", "名称：最多 60 个字符。", "at most 60 characters.")
    template = None
    if data.coupon_template_id is not None:
        template = CouponTemplate.objects.filter(organisation=actor.organisation, pk=data.coupon_template_id).first()
        if template is None:
            raise NotFound(
                "coupon.template_not_found",
                zh="找不到该优惠券。",
                en="Coupon template not found.",
                field="coupon_template",
            )
    tier = None
    if data.grant_tier_id is not None:
        tier = Tier.objects.filter(organisation=actor.organisation, pk=data.grant_tier_id).first()
        if tier is None:
            raise NotFound("tier.not_found", zh="找不到该会员等级。", en="Tier not found.", field="grant_tier")
    with transaction.atomic():
        if rule is not None:
            rule = RechargeRule.objects.select_for_update().filter(product=product_row, pk=rule.pk).first()
            if rule is None:
                raise NotFound("wallet.rule_not_found", zh="找不到该充值规则。", en="Recharge rule not found.")
            before: dict[str, Any] | None = recharge_rule_input(rule).__dict__
        else:
            rule = RechargeRule(organisation=actor.organisation, product=product_row)
            before = None
        rule.name, rule.threshold_fen, rule.bonus_fen = name, data.threshold_fen, data.bonus_fen
        rule.instalments, rule.bonus_points = data.instalments, data.bonus_points
        rule.coupon_template, rule.coupon_count = template, data.coupon_count if template is not None else 0
        rule.grant_tier, rule.grant_months = tier, data.grant_months
        rule.active, rule.starts_on, rule.ends_on = bool(data.active), data.starts_on, data.ends_on
        rule.save()
        audit_record(
            actor=actor,
            action="wallet.recharge_rule_save",
            obj=rule,
            detail={
                "product": product_row.code,
                "before": _jsonable(before),
                "after": _jsonable(recharge_rule_input(rule).__dict__),
            },
        )
    return rule


def _jsonable(values: dict[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in values.items()}


def _invalid(field: str, zh: str, en: str) -> ValidationFailed:
    return ValidationFailed("input.invalid", zh=zh, en=f"{field}: {en}", field=field)


_SLUG = re.compile(r"[a-z0-9_-]{1,32}")


# --- Settings -----------------------------------------------------------------------------------------------------


def wallet_settings_set(*, actor: Actor, store: Store, spend_order: str) -> WalletSettings:
    """Set how a store takes principal and bonus (proportional, principal_first or bonus_first)."""
    actor.require(Perm.STORE_MANAGE)
    store = store_get(actor, store.pk)
    if spend_order not in SpendOrder.values:
        raise ValidationFailed(
            "wallet.invalid_spend_order",
            zh=f"扣款顺序：{spend_order!r} 不是有效选项。",
            en=f"spend_order: {spend_order!r} is not a valid choice.",
            field="spend_order",
        )
    with transaction.atomic():
        settings, _ = WalletSettings.objects.select_for_update().get_or_create(store=store)
        before = settings.spend_order
        settings.spend_order = spend_order
        settings.save(update_fields=["spend_order"])
        audit_record(
            actor=actor, action="wallet.settings_set", obj=store, detail={"spend_order": [before, spend_order]}
        )
    return settings


# --- Member merge, export, erasure ------------------------------------------------------------------------


def wallet_merge(actor: Actor, survivor: Member, merged: Member) -> dict[str, Any]:
    """``members.services.MERGE_HOOKS`` entry: move the merged member's principal, bonus and pending bonus to
    the survivor (one ``wallet.merge`` journal), and her recharge records and pending instalments with them.
    Runs in ``member_merge``'s transaction.

    The balance rows are locked first (one ``accounts_lock``, primary-key order, as a checkout does) and only
    then are the recharge and instalment rows updated. A moved recharge's cooling-off ends on the day before
    the merge (``cooling_off_until``; it was spent from, or not, in accounts the survivor's no longer show;
    ``wallet_recharge_refund`` refuses it ``wallet.recharge_merged`` anyway). The survivor's product cap is
    not applied: a merge corrects the records of one person, her money is hers whatever the cap."""
    kinds = (PRINCIPAL, BONUS, PENDING)
    sources = [
        account_find(
            organisation_id=merged.organisation_id, owner_type="member", owner_id=merged.pk, asset=CNY, kind=kind
        )
        for kind in kinds
    ]
    zero = {"wallet_principal_fen": 0, "wallet_bonus_fen": 0, "wallet_pending_fen": 0}
    if not any(sources):
        return _merge_rows(actor, survivor, merged) | zero
    wanted = [AccountKey("member", merged.pk, CNY, kind) for kind, a in zip(kinds, sources, strict=True) if a]
    locked = accounts_lock(organisation_id=survivor.organisation_id, keys=[*wanted, *_member_keys(survivor.pk)])
    moved = _merge_rows(actor, survivor, merged)
    targets = _member_keys(survivor.pk)
    amounts: dict[str, int] = {}
    legs: list[Leg] = []
    for kind, source, target in zip(kinds, sources, targets, strict=True):
        part = locked.balance(source) if source is not None else 0
        amounts[kind] = part
        if source is not None and part:
            legs += [Leg(source, -part), Leg(locked.get(target), part)]
    if legs:
        journal_post(
            organisation_id=survivor.organisation_id,
            code="wallet.merge",
            entries=legs,
            reference_type="members.Member",
            reference_id=str(merged.pk),
            staff_id=actor.staff.pk if actor.staff is not None else None,
            store_id=actor.store.pk if actor.store is not None else None,
            idempotency_key=f"member.merge:{merged.pk}:cny",
        )
    return moved | {
        "wallet_principal_fen": amounts[PRINCIPAL],
        "wallet_bonus_fen": amounts[BONUS],
        "wallet_pending_fen": amounts[PENDING],
    }


def _merge_rows(actor: Actor, survivor: Member, merged: Member) -> dict[str, Any]:
    """Move the merged member's recharges and pending instalments to the survivor, ending the cooling-off of
    the recharges still in it (see ``wallet_merge``)."""
    yesterday = local_today(actor.store) - timedelta(days=1)
    ended = Recharge.objects.filter(member=merged, refund_journal__isnull=True, cooling_off_until__gt=yesterday).update(
        cooling_off_until=yesterday
    )
    return {
        "recharges": Recharge.objects.filter(member=merged).update(member=survivor),
        "recharges_cooling_off_ended": ended,
        "instalments": BonusInstalment.objects.filter(member=merged, status=InstalmentStatus.PENDING).update(
            member=survivor
        ),
    }


def wallet_export_section(member: Member) -> tuple[str, Any]:
    """``members.services.EXPORT_SECTIONS`` entry: balances, recharges and every stored-value movement."""
    balance = wallet_balance(member)
    return (
        "wallet",
        {
            "principal": balance.principal.as_decimal_string(),
            "bonus": balance.bonus.as_decimal_string(),
            "pending": balance.pending.as_decimal_string(),
            "recharges": [
                {
                    "at": r.created_at.isoformat(),
                    "store": r.store.name,
                    "amount": Money(r.amount_fen).as_decimal_string(),
                    "bonus": Money(r.bonus_fen).as_decimal_string(),
                    "pending_bonus": Money(r.pending_bonus_fen).as_decimal_string(),
                    "bonus_points": r.bonus_points,
                    "product": r.product.name if r.product is not None else None,
                    "named": r.named,
                    "tender": r.tender,
                    "external_ref": r.external_ref,
                    "refunded_at": r.refunded_at.isoformat() if r.refunded_at else None,
                }
                for r in member_recharges(member)
            ],
            "instalments": [
                {
                    "recharge": i.recharge_id,
                    "part": i.seq,
                    "due_on": i.due_on.isoformat(),
                    "amount": Money(i.amount_fen).as_decimal_string(),
                    "status": i.status,
                }
                for i in member_instalments(member)
            ],
            "history": [
                {
                    "at": line.created_at.isoformat(),
                    "code": line.code,
                    "principal": line.principal.as_decimal_string(),
                    "bonus": line.bonus.as_decimal_string(),
                    "principal_after": line.principal_after.as_decimal_string(),
                    "bonus_after": line.bonus_after.as_decimal_string(),
                }
                for line in wallet_history(member, limit=None)
            ],
        },
    )


def wallet_retention(member: Member) -> list[dict[str, str]]:
    """``members.services.RETENTION_HOOKS`` entry: a member who bought stored value keeps her phone."""
    if Recharge.objects.filter(member=member).exists():
        return [{"field": "phone", "why": PREPAID_RECORD_REASON}]
    return []


# --- internals -------------------------------------------------------------------------------------------------


def _member_keys(member_id: int) -> tuple[AccountKey, AccountKey, AccountKey]:
    """The member's principal, bonus and pending-bonus accounts (none may go negative)."""
    return (
        AccountKey("member", member_id, CNY, PRINCIPAL),
        AccountKey("member", member_id, CNY, BONUS),
        AccountKey("member", member_id, CNY, PENDING),
    )


def check_tender(tender: str, *, code: str = "wallet.invalid_tender", label_zh: str = "支付方式") -> None:
    """A money tender taken or paid out outside a bill: cash, card, wechat or alipay (else ``code``, on field
    ``tender``). Shared by every prepaid service that moves money through a store's tender account."""
    if tender not in Tender.values:
        raise ValidationFailed(
            code,
            zh=f"{label_zh}：{tender!r} 无效，可选现金、银行卡、微信、支付宝。",
            en=f"tender: {tender!r} is not valid; use cash, card, wechat or alipay.",
            field="tender",
            extra={"choices": list(Tender.values)},
        )


def _check_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason or len(reason) > 200:
        raise ValidationFailed(
            "wallet.reason_required",
            zh="原因：必须填写，最多 200 个字符。",
            en="reason: required, at most 200 characters.",
            field="reason",
        )
    return reason


def _require_store(actor: Actor) -> Store:
    store = actor.store
    if store is None or store.organisation_id != actor.organisation.pk:
        raise ValidationFailed(
            "wallet.store_required",
            zh="请先选择当前门店。",
            en="Choose the current store first.",
            field="store",
        )
    return store


def _on_behalf(actor: Actor) -> Actor:
    """The system acting for a wallet operation whose own permission was checked: what the operation does by
    its rules (a rule's tier grant, voiding a refunded recharge's coupons) needs no further role of the
    staff member; the operation's own audit row names her."""
    return Actor.system(actor.organisation, actor.store)


def _staff_id(actor: Actor) -> int | None:
    return actor.staff.pk if actor.staff is not None else None


def _invalid_amount(field: str) -> ValidationFailed:
    return ValidationFailed(
        "wallet.invalid_amount",
        zh="金额：必须大于 0。",
        en=f"{field}: must be more than 0.",
        field=field,
    )


def _check_parts(principal: Money, bonus: Money) -> None:
    if principal.is_negative or bonus.is_negative:
        raise ValueError(f"principal and bonus parts must not be negative: {principal!r}, {bonus!r}")
