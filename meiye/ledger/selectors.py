"""Reading the ledger.

The ledger knows nothing about staff or stores, so these reads are not permission-checked: the app
that owns the account (wallet, points, packages) checks access and then asks here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import BigIntegerField, F, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from meiye.ledger.models import Account, Balance, BalanceDelta, Entry, Journal


def balance_of(account: Account) -> int:
    """The account's current balance, read from the database (not from a cached related object): its balance
    row plus, for a shared account, the deltas not yet folded into it (ADR 0009), in one statement."""
    current: int = (
        Balance.objects.filter(account_id=account.pk)
        .annotate(current=F("amount") + pending_deltas("account_id"))
        .values_list("current", flat=True)
        .get()
    )
    return current


def pending_deltas(account_ref: str) -> Coalesce:
    """An expression for the sum of the pending balance deltas of the account ``account_ref`` names (0 if
    none), to add to a balance row's ``amount`` in a query."""
    deltas = (
        BalanceDelta.objects.filter(account_id=OuterRef(account_ref))
        .values("account_id")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    return Coalesce(Subquery(deltas, output_field=BigIntegerField()), Value(0))


def account_find(*, organisation_id: int, owner_type: str, owner_id: int, asset: str, kind: str) -> Account | None:
    """The account if it exists; unlike ``account_get_or_create`` it never writes."""
    return Account.objects.filter(
        organisation_id=organisation_id, owner_type=owner_type, owner_id=owner_id, asset=asset, kind=kind
    ).first()


def account_entries(account: Account) -> QuerySet[Entry]:
    """The account's entries, oldest first, with their journals."""
    return Entry.objects.filter(account_id=account.pk).select_related("journal").order_by("pk")


@dataclass(frozen=True, slots=True)
class HistoryLine:
    journal_id: int
    code: str
    reference_type: str
    reference_id: str
    created_at: datetime
    amount: int
    balance_after: int


def account_history(account: Account, *, limit: int | None = None) -> list[HistoryLine]:
    """The account's movements, newest first, each with the balance after it.

    Entries of one account are written under the lock on its balance row, so their primary-key order
    is the order in which they changed the balance; the running balance is computed in that order.
    """
    lines: list[HistoryLine] = []
    running = 0
    for entry in account_entries(account):
        running += entry.amount
        journal = entry.journal
        lines.append(
            HistoryLine(
                journal_id=journal.pk,
                code=journal.code,
                reference_type=journal.reference_type,
                reference_id=journal.reference_id,
                created_at=journal.created_at,
                amount=entry.amount,
                balance_after=running,
            )
        )
    lines.reverse()
    return lines[:limit] if limit is not None else lines


def journal_entries(journal: Journal) -> QuerySet[Entry]:
    return Entry.objects.filter(journal_id=journal.pk).select_related("account").order_by("pk")


def journal_by_idempotency_key(*, organisation_id: int, key: str) -> Journal | None:
    return Journal.objects.filter(organisation_id=organisation_id, idempotency_key=key).first()


def journals_for_reference(*, organisation_id: int, reference_type: str, reference_id: str) -> QuerySet[Journal]:
    """Every journal posted for one business object (a bill, a recharge …), oldest first."""
    return Journal.objects.filter(
        organisation_id=organisation_id, reference_type=reference_type, reference_id=reference_id
    ).order_by("pk")
