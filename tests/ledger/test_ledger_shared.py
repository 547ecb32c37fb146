"""Shared counter-accounts (ADR 0009): postings append balance deltas instead of locking the balance row,
the balance read through the ledger is the row plus the deltas, and the fold moves the deltas into the row."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction

from meiye.core.errors import ApplicationError
from meiye.ledger import services
from meiye.ledger.models import Account, Balance, BalanceDelta, Journal
from meiye.ledger.selectors import balance_of
from meiye.ledger.services import (
    AccountKey,
    BulkLine,
    Leg,
    Posting,
    accounts_lock,
    balances_fold,
    journal_post,
    journal_reverse,
    journals_post,
    journals_post_bulk,
)
from meiye.ledger.tasks import balances_fold_task
from meiye.ledger.verification import verify_ledger
from tests.ledger.support import ORG, fire_deferred_checks, ledger_state

pytestmark = pytest.mark.django_db

STORE_REVENUE = AccountKey("store", 51, "CNY", "revenue", may_go_negative=True)
MEMBER = AccountKey("member", 8001, "CNY", "wallet_principal")


def _pay(locked: services.LockedAccounts, amount: int, key: str) -> None:
    journals_post(
        organisation_id=ORG,
        postings=[
            Posting(
                "sales.bill",
                [Leg(locked.get(MEMBER), -amount), Leg(locked.get(STORE_REVENUE), amount)],
                idempotency_key=key,
            )
        ],
        locked=locked,
    )


@pytest.fixture
def funded(tender, make_account):
    """The member's wallet holds 10,000; the store's revenue account exists (shared)."""
    member = make_account(owner_id=MEMBER.owner_id)
    journal_post(organisation_id=ORG, code="fund", entries=[(tender(), -10_000), (member, 10_000)])
    revenue = make_account(owner_type="store", owner_id=51, kind="revenue", may_go_negative=True)
    balances_fold()  # the funding's delta on the organisation's tender account (PostgreSQL)
    return member, revenue


def test_counter_accounts_of_stores_and_the_organisation_are_shared_member_accounts_are_not(funded, tender):
    member, revenue = funded
    assert revenue.shared and tender().shared
    assert not member.shared
    assert services.is_shared("store", True) and not services.is_shared("store", False)
    assert not services.is_shared("member", True)


def _row_and_deltas(account: Account) -> tuple[int, list[int]]:
    return Balance.objects.get(account=account).amount, sorted(
        BalanceDelta.objects.filter(account=account).values_list("amount", flat=True)
    )


def test_a_posting_appends_a_delta_to_a_shared_account_and_leaves_its_row(funded):
    member, revenue = funded
    with transaction.atomic():
        locked = accounts_lock(organisation_id=ORG, keys=[MEMBER, STORE_REVENUE])
        assert revenue.pk in locked.shared and member.pk in locked.balances
        with pytest.raises(ValueError, match="shared"):
            locked.balance(revenue)
        _pay(locked, 3_000, "bill-1")
        _pay(locked, 2_000, "bill-2")
    fire_deferred_checks()

    if connection.features.has_select_for_update:  # PostgreSQL: the row is not touched
        assert _row_and_deltas(revenue) == (0, [2_000, 3_000])  # one delta per account per operation
    else:  # SQLite: one writer, nobody queues on the row, so it takes the change in the same UPDATE
        assert _row_and_deltas(revenue) == (5_000, [])
    assert balance_of(revenue) == 5_000 and balance_of(member) == 5_000
    assert verify_ledger() == []


def test_a_single_journal_and_its_reversal_use_deltas_too(funded):
    member, revenue = funded
    journal = journal_post(organisation_id=ORG, code="sale", entries=[(member, -700), (revenue, 700)])
    assert balance_of(revenue) == 700
    if connection.features.has_select_for_update:
        assert _row_and_deltas(revenue) == (0, [700])
    journal_reverse(journal=journal)
    assert balance_of(revenue) == 0 and balance_of(member) == 10_000
    assert verify_ledger() == []


def test_a_refused_posting_writes_no_delta(funded):
    before = ledger_state()
    with pytest.raises(ApplicationError) as refused, transaction.atomic():
        locked = accounts_lock(organisation_id=ORG, keys=[MEMBER, STORE_REVENUE])
        _pay(locked, 10_001, "too-much")
    assert refused.value.code == "ledger.insufficient_balance"
    assert ledger_state() == before


def _bulk_sales(store_key: AccountKey, *amounts: int) -> None:
    """Sales from the member's wallet to ``store_key`` by the bulk path, which writes deltas on both databases."""
    with transaction.atomic():
        locked = accounts_lock(organisation_id=ORG, keys=[MEMBER, store_key])
        journals_post_bulk(
            organisation_id=ORG,
            code="sale",
            counter=locked.get(store_key),
            lines=[BulkLine(locked.get(MEMBER), -amount) for amount in amounts],
            locked=locked,
        )
    fire_deferred_checks()


def test_the_fold_moves_the_deltas_into_the_rows_and_the_balance_stays(funded):
    member, revenue = funded
    _bulk_sales(STORE_REVENUE, 1_500, 500)
    assert _row_and_deltas(revenue) == (0, [2_000])
    version = Balance.objects.get(account=revenue).version

    assert balances_fold() == 1

    assert not BalanceDelta.objects.exists()
    row = Balance.objects.get(account=revenue)
    assert (row.amount, row.version) == (2_000, version + 1)
    assert balance_of(revenue) == 2_000 and balance_of(member) == 8_000
    assert balances_fold() == 0
    assert verify_ledger() == []


def test_the_fold_works_in_batches(funded):
    keys = [AccountKey("store", 600 + n, "CNY", "revenue", may_go_negative=True) for n in range(5)]
    for n, key in enumerate(keys):
        _bulk_sales(key, n + 1)

    assert balances_fold(batch=2) == 5

    assert not BalanceDelta.objects.exists()
    assert [Balance.objects.get(account__owner_id=key.owner_id).amount for key in keys] == [1, 2, 3, 4, 5]
    assert verify_ledger() == []


@pytest.mark.ledger_drift
def test_ledger_verify_counts_the_deltas_and_reports_a_delta_on_an_unshared_account(funded):
    member, revenue = funded
    journal_post(organisation_id=ORG, code="sale", entries=[(member, -100), (revenue, 100)])
    balances_fold()
    assert verify_ledger() == []

    BalanceDelta.objects.create(account=revenue, amount=1)
    BalanceDelta.objects.create(account=member, amount=-1)
    Balance.objects.filter(account=member).update(amount=10_000 - 100 + 1)  # so only the delta rule fires for it

    problems = verify_ledger()
    assert f"account {revenue.pk}: balance 101 but entries sum to 100 (drift +1)" in problems
    assert f"account {member.pk}: balance deltas on an account that is not shared" in problems


def test_a_remembered_shared_account_that_is_not_shared_falls_back_to_the_identity_lock(
    funded, django_capture_on_commit_callbacks
):
    _, revenue = funded
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        accounts_lock(organisation_id=ORG, keys=[MEMBER, STORE_REVENUE])
    # As if the database had changed under the process: the account the rule calls shared is not.
    Account.objects.filter(pk=revenue.pk).update(shared=False)

    with transaction.atomic():
        locked = accounts_lock(organisation_id=ORG, keys=[MEMBER, STORE_REVENUE])

    assert revenue.pk in locked.balances and revenue.pk not in locked.shared  # locked, as its row says


@contextlib.contextmanager
def _row_held_elsewhere(account: Account) -> Iterator[None]:
    """Another connection holds ``account``'s balance row (``FOR UPDATE``) until the block ends."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                Balance.objects.select_for_update().get(account=account)
                held.set()
                release.wait(10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        yield
    finally:
        release.set()
        holder.join()


def _lock_timeout(value: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{value}'")


@pytest.mark.django_db(transaction=True)
def test_a_checkout_does_not_wait_for_a_held_shared_row(funded, monkeypatch):
    """PostgreSQL: one transaction holds the store's revenue row (the fold, say); a posting to it goes on."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL (SQLite has one writer)")
    _, revenue = funded
    monkeypatch.setattr(services, "_KNOWN_IDS", {})  # the first payment locks by identity, the second by id
    outcome = []
    with _row_held_elsewhere(revenue):
        for n in range(2):
            with transaction.atomic():
                _lock_timeout("2s")
                locked = accounts_lock(organisation_id=ORG, keys=[MEMBER, STORE_REVENUE])
                _pay(locked, 1_000, f"while-held-{n}")
            outcome.append(n)
    assert outcome == [0, 1]
    assert balance_of(revenue) == 2_000
    assert verify_ledger() == []


def test_ledger_fold_command_and_task_fold_the_deltas(funded):
    _, revenue = funded
    _bulk_sales(STORE_REVENUE, 300)
    out = StringIO()

    call_command("ledger_fold", stdout=out)

    assert "ledger_fold: 1 account(s) folded" in out.getvalue()
    assert _row_and_deltas(revenue) == (300, [])
    _bulk_sales(STORE_REVENUE, 200)
    assert balances_fold_task.call_local() == 1  # the Huey job, every minute
    assert _row_and_deltas(revenue) == (500, [])


@pytest.mark.django_db(transaction=True)
def test_the_fold_skips_a_row_another_transaction_holds_and_never_waits(funded):
    """PostgreSQL: the fold locks SKIP LOCKED; a held row keeps its deltas for the next run."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL (SQLite has one writer)")
    _, revenue = funded
    _bulk_sales(STORE_REVENUE, 400)
    with _row_held_elsewhere(revenue):
        with transaction.atomic():
            _lock_timeout("2s")
            assert balances_fold() == 0
        assert _row_and_deltas(revenue) == (0, [400])
    assert balances_fold() == 1
    assert _row_and_deltas(revenue) == (400, [])


def _sale(locked: services.LockedAccounts, amount: int) -> list[Leg]:
    return [Leg(locked.get(MEMBER), -amount), Leg(locked.get(STORE_REVENUE), amount)]


def test_a_claimed_key_that_something_else_holds_is_refused_and_the_transaction_can_go_on(funded):
    """``keys_claimed=True`` skips the look-up; a key used by anything else is still refused, by the INSERT
    (``ON CONFLICT DO NOTHING``), and the caller's transaction stays usable without a savepoint."""
    member, revenue = funded
    journal_post(organisation_id=ORG, code="other", entries=[(member, -100), (revenue, 100)], idempotency_key="k:cny")
    before = ledger_state()

    with pytest.raises(ApplicationError) as refused, transaction.atomic():
        locked = accounts_lock(organisation_id=ORG, keys=[MEMBER, STORE_REVENUE])
        with pytest.raises(ApplicationError) as inner:
            journals_post(
                organisation_id=ORG,
                postings=[
                    Posting("sales.bill", _sale(locked, 300), idempotency_key="k:a"),
                    Posting("sales.bill", _sale(locked, 200), idempotency_key="k:cny"),
                ],
                locked=locked,
                keys_claimed=True,
            )
        assert Journal.objects.filter(idempotency_key="k:cny").count() == 1  # still readable: not aborted
        raise inner.value

    assert refused.value.code == "ledger.idempotency_conflict"
    assert "k:cny" in refused.value.message_en
    assert ledger_state() == before  # the journal written before the clash went with the rollback
