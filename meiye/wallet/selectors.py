"""Reads of stored value. Balances and movements come from the ledger; nothing here writes.

These take a member the caller already obtained through ``meiye.members.selectors.member_get``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import OuterRef, QuerySet, Subquery

from meiye.core.money import Money
from meiye.ledger.models import Balance
from meiye.ledger.selectors import HistoryLine, account_find, account_history
from meiye.members.models import Member
from meiye.org.models import Store
from meiye.wallet.models import Recharge, SpendOrder, WalletSettings

CNY = "CNY"
PRINCIPAL = "wallet_principal"
BONUS = "wallet_bonus"


@dataclass(frozen=True, slots=True)
class WalletBalance:
    principal: Money
    bonus: Money

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
        account__kind__in=(PRINCIPAL, BONUS),
    ).order_by("account_id")
    if lock:
        rows = rows.select_for_update(of=("self",))
    amounts = dict(rows.values_list("account__kind", "amount"))
    return WalletBalance(principal=Money(amounts.get(PRINCIPAL, 0)), bonus=Money(amounts.get(BONUS, 0)))


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
    return Recharge.objects.filter(member=member).select_related("store").order_by("-created_at", "-pk")
