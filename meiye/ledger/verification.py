"""Checking the whole ledger against its invariants (the nightly ``manage.py ledger_verify``).

The posting service and the database already refuse bad writes; this is the independent second look
that catches what they cannot: a balance row edited by hand (``ledger_balance`` is not append-only),
and on SQLite a journal that does not net to zero, which only the service checks there.
Every check is an aggregate query, so it stays fast on a large ledger.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.db.models import F, IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from meiye.ledger.models import Account, Balance, BalanceDelta, Entry, Journal
from meiye.ledger.selectors import pending_deltas


@dataclass
class LedgerReport:
    accounts: int = 0
    journals: int = 0
    entries: int = 0
    reversals: int = 0
    problems: list[str] = field(default_factory=list)


def verify_ledger() -> list[str]:
    """Every problem found, one line each; an empty list means the ledger is consistent."""
    return ledger_report().problems


def ledger_report() -> LedgerReport:
    report = LedgerReport(
        accounts=Account.objects.count(),
        journals=Journal.objects.count(),
        entries=Entry.objects.count(),
        reversals=Journal.objects.filter(reversal_of__isnull=False).count(),
    )
    problems = report.problems

    # Balances: each equals the sum of its entries, allows a negative only where the account does.
    for account_id in Account.objects.filter(balance__isnull=True).values_list("pk", flat=True):
        problems.append(f"account {account_id}: no balance row")
    entry_sum = (
        Entry.objects.filter(account_id=OuterRef("account_id"))
        .values("account_id")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    # A shared account's balance is its row plus its pending deltas (ADR 0009); others have no deltas.
    drifted = (
        Balance.objects.annotate(
            entries_total=Coalesce(Subquery(entry_sum, output_field=IntegerField()), Value(0)),
            current=F("amount") + pending_deltas("account_id"),
        )
        .exclude(current=F("entries_total"))
        .values_list("account_id", "current", "entries_total")
        .order_by("account_id")
    )
    for account_id, amount, total in drifted:
        problems.append(
            f"account {account_id}: balance {amount} but entries sum to {total} (drift {amount - total:+d})"
        )
    for account_id in (
        BalanceDelta.objects.filter(account__shared=False)
        .values_list("account_id", flat=True)
        .distinct()
        .order_by("account_id")
    ):
        problems.append(f"account {account_id}: balance deltas on an account that is not shared")
    for account_id in Account.objects.filter(shared=True, may_go_negative=False).values_list("pk", flat=True):
        problems.append(f"account {account_id}: shared but may not go negative")
    for account_id in (
        Balance.objects.exclude(may_go_negative=F("account__may_go_negative"))
        .values_list("account_id", flat=True)
        .order_by("account_id")
    ):
        problems.append(f"account {account_id}: balance row's may_go_negative differs from the account's")
    for account_id, amount in (
        Balance.objects.filter(amount__lt=0)
        .filter(Q(may_go_negative=False) | Q(account__may_go_negative=False))
        .values_list("account_id", "amount")
        .order_by("account_id")
    ):
        problems.append(f"account {account_id}: negative balance {amount} on an account that may not go negative")

    # Entries and journals.
    for entry_id, journal_id in Entry.objects.filter(amount=0).values_list("pk", "journal_id").order_by("pk"):
        problems.append(f"entry {entry_id} (journal {journal_id}): zero amount")
    for entry_id, asset, account_asset in (
        Entry.objects.exclude(asset=F("account__asset")).values_list("pk", "asset", "account__asset").order_by("pk")
    ):
        problems.append(f"entry {entry_id}: asset {asset} but its account holds {account_asset}")
    for entry_id, journal_id in (
        Entry.objects.exclude(account__organisation_id=F("journal__organisation_id"))
        .values_list("pk", "journal_id")
        .order_by("pk")
    ):
        problems.append(f"entry {entry_id}: account of another organisation than journal {journal_id}")
    for journal_id in Journal.objects.filter(entries__isnull=True).values_list("pk", flat=True).order_by("pk"):
        problems.append(f"journal {journal_id}: no entries")
    for journal_id, asset, total in (
        Entry.objects.values("journal_id", "asset")
        .annotate(total=Sum("amount"))
        .exclude(total=0)
        .values_list("journal_id", "asset", "total")
        .order_by("journal_id", "asset")
    ):
        problems.append(f"journal {journal_id}: {asset} entries sum to {total}, not 0")

    problems.extend(_reversal_problems())
    return report


def _reversal_problems() -> list[str]:
    """Every reversal negates its original line for line (as a multiset of (account, amount))."""
    pairs = list(
        Journal.objects.filter(reversal_of__isnull=False)
        .values_list("pk", "reversal_of_id", "organisation_id", "reversal_of__organisation_id")
        .order_by("pk")
    )
    if not pairs:
        return []
    lines: dict[int, Counter[tuple[int, int]]] = defaultdict(Counter)
    involved = Entry.objects.filter(Q(journal__reversal_of__isnull=False) | Q(journal__reversed_by__isnull=False))
    for journal_id, account_id, amount in involved.values_list("journal_id", "account_id", "amount"):
        lines[journal_id][(account_id, amount)] += 1
    problems: list[str] = []
    for reversal_id, original_id, organisation_id, original_organisation_id in pairs:
        if organisation_id != original_organisation_id:
            problems.append(f"journal {reversal_id}: reverses journal {original_id} of another organisation")
        mirrored = Counter({(account_id, -amount): n for (account_id, amount), n in lines[original_id].items()})
        if lines[reversal_id] != mirrored:
            problems.append(f"journal {reversal_id}: does not mirror the journal {original_id} it reverses")
    return problems
