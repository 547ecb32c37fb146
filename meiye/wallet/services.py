"""Writes for stored value: recharge, the principal/bonus split of a payment, the legs sales posts,
the store's spend order, and the member merge / export / erasure hooks.

Sign convention and accounts: ADR 0003. A recharge is one ``wallet.recharge`` journal; spending and refunds
are legs that ``meiye.sales`` puts into the bill's CNY journal together with its tender and revenue legs
(``wallet_spend_legs`` / ``wallet_refund_legs`` / ``store_account``), so one bill is one journal.

A recharge earns no points and no growth value: points and growth come when the principal is spent.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from meiye.audit.services import audit_record
from meiye.core.errors import ApplicationError, NotFound, PermissionDenied, ValidationFailed
from meiye.core.idempotency import conflict_error, validate_key
from meiye.core.money import Money, allocate_int
from meiye.ledger.models import Account, Balance
from meiye.ledger.selectors import account_find
from meiye.ledger.services import AccountKey, Leg, LockedAccounts, account_get_or_create, journal_post
from meiye.members.models import Member
from meiye.members.selectors import member_get, member_survivor
from meiye.notify.events import WALLET_RECHARGE
from meiye.notify.services import notify_event
from meiye.org.context import Actor
from meiye.org.models import Store
from meiye.org.roles import Perm
from meiye.org.selectors import store_get
from meiye.wallet.models import Recharge, SpendOrder, Tender, WalletSettings
from meiye.wallet.selectors import (
    BONUS,
    CNY,
    PRINCIPAL,
    WalletBalance,
    member_recharges,
    wallet_balance,
    wallet_history,
    wallet_spend_order,
)

__all__ = [
    "STORE_ACCOUNT_KINDS",
    "WalletAccounts",
    "WalletBalance",
    "WalletSplit",
    "split_amount",
    "store_account",
    "store_account_key",
    "wallet_account_keys",
    "wallet_accounts",
    "wallet_balance",
    "wallet_export_section",
    "wallet_merge",
    "wallet_recharge",
    "wallet_refund_legs",
    "wallet_retention",
    "wallet_settings_set",
    "wallet_spend_legs",
    "wallet_split",
    "wallet_split_locked",
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
) -> Recharge:
    """Top up the member's stored value in the actor's store: one ``wallet.recharge`` journal.

    store tender_<tender> −amount, member principal +amount; with a bonus also store bonus_issued −bonus,
    member bonus +bonus. Writes an audit row. Earns no points and no growth value.

    Idempotent per (organisation, key): the same key with the same request returns the first recharge and
    writes nothing; with a different request it is refused with ``idempotency.key_reused`` (the recharge's
    own check; the ledger journal uses the derived key ``<key>:cny``).
    """
    actor.require(Perm.CHECKOUT)
    if bonus.fen > 0 and not actor.can(Perm.MONEY_ADJUST):
        # Until recharge rules (充X送Y) compute the bonus, a hand-typed bonus is money given away: it needs
        # a role that may adjust money (store manager, finance, HQ), not every cashier.
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
    if tender not in Tender.values:
        raise ValidationFailed(
            "wallet.invalid_tender",
            zh=f"支付方式：{tender!r} 无效，可选现金、银行卡、微信、支付宝。",
            en=f"tender: {tender!r} is not valid; use cash, card, wechat or alipay.",
            field="tender",
            extra={"choices": list(Tender.values)},
        )
    external_ref = (external_ref or "").strip()
    if len(external_ref) > 64:
        raise ValidationFailed(
            "input.too_long",
            zh="支付流水号：最多 64 个字符。",
            en="external_ref: at most 64 characters.",
            field="external_ref",
        )
    key = validate_key(idempotency_key)
    request = {
        "member_id": member.pk,
        "store_id": store.pk,
        "amount_fen": amount.fen,
        "bonus_fen": bonus.fen,
        "tender": tender,
        "external_ref": external_ref,
    }
    with transaction.atomic():
        first = _recharge_replay(actor, key, request)
        if first is not None:
            return first
        try:
            with transaction.atomic():
                recharge = Recharge.objects.create(
                    organisation=actor.organisation,
                    store=store,
                    member=member,
                    amount_fen=amount.fen,
                    bonus_fen=bonus.fen,
                    tender=tender,
                    external_ref=external_ref,
                    idempotency_key=key,
                    created_by=actor.staff,
                )
        except IntegrityError:
            # The same key was committed meanwhile by a concurrent request.
            first = _recharge_replay(actor, key, request)
            if first is None:
                raise
            return first
        accounts = wallet_accounts(member=member)
        legs = [
            Leg(store_account(store=store, kind=f"tender_{tender}"), -amount.fen),
            Leg(accounts.principal, amount.fen),
        ]
        if bonus.fen:
            legs += [Leg(store_account(store=store, kind="bonus_issued"), -bonus.fen), Leg(accounts.bonus, bonus.fen)]
        recharge.journal = journal_post(
            organisation_id=actor.organisation.pk,
            code="wallet.recharge",
            entries=legs,
            reference_type="wallet.Recharge",
            reference_id=str(recharge.pk),
            staff_id=actor.staff.pk if actor.staff is not None else None,
            store_id=store.pk,
            idempotency_key=f"{key}:cny",
            memo=f"{tender} {external_ref}".strip(),
        )
        recharge.save(update_fields=["journal"])
        audit_record(
            actor=actor,
            action="wallet.recharge",
            obj=recharge,
            detail={
                "member": member.member_no,
                "amount": amount.as_decimal_string(),
                "bonus": bonus.as_decimal_string(),
                "tender": tender,
            },
        )
        _recharge_notify(actor, member, recharge)
    return recharge


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
        "bonus_fen": first.bonus_fen,
        "tender": first.tender,
        "external_ref": first.external_ref,
    }
    if recorded != request:
        raise conflict_error(key)
    return first


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
    """``members.services.MERGE_HOOKS`` entry: move the merged member's principal and bonus to the survivor
    (one ``wallet.merge`` journal) and her recharge records with them. Runs in ``member_merge``'s transaction."""
    moved: dict[str, Any] = {"recharges": Recharge.objects.filter(member=merged).update(member=survivor)}
    sources = [
        account_find(
            organisation_id=merged.organisation_id, owner_type="member", owner_id=merged.pk, asset=CNY, kind=kind
        )
        for kind in (PRINCIPAL, BONUS)
    ]
    if not any(sources):
        return moved | {"wallet_principal_fen": 0, "wallet_bonus_fen": 0}
    targets = wallet_accounts(member=survivor)
    # Lock all four balance rows in primary-key order (the ledger's order), then read what moves.
    held = dict(
        Balance.objects.select_for_update()
        .filter(account_id__in=[a.pk for a in (*sources, targets.principal, targets.bonus) if a is not None])
        .order_by("account_id")
        .values_list("account_id", "amount")
    )
    balance = WalletBalance(
        principal=Money(held[sources[0].pk] if sources[0] is not None else 0),
        bonus=Money(held[sources[1].pk] if sources[1] is not None else 0),
    )
    legs: list[Leg] = []
    for source, target, part in (
        (sources[0], targets.principal, balance.principal),
        (sources[1], targets.bonus, balance.bonus),
    ):
        if source is not None and part.fen:
            legs += [Leg(source, -part.fen), Leg(target, part.fen)]
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
    return moved | {"wallet_principal_fen": balance.principal.fen, "wallet_bonus_fen": balance.bonus.fen}


def wallet_export_section(member: Member) -> tuple[str, Any]:
    """``members.services.EXPORT_SECTIONS`` entry: balances, recharges and every stored-value movement."""
    balance = wallet_balance(member)
    return (
        "wallet",
        {
            "principal": balance.principal.as_decimal_string(),
            "bonus": balance.bonus.as_decimal_string(),
            "recharges": [
                {
                    "at": r.created_at.isoformat(),
                    "store": r.store.name,
                    "amount": Money(r.amount_fen).as_decimal_string(),
                    "bonus": Money(r.bonus_fen).as_decimal_string(),
                    "tender": r.tender,
                    "external_ref": r.external_ref,
                }
                for r in member_recharges(member)
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
