"""The database itself refuses what the services never do: raw SQL that edits history or breaks a rule.

Each raw statement runs in its own savepoint (``transaction.atomic()``) so that, on PostgreSQL, the
test transaction is still usable afterwards to check that nothing changed.
"""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import override_settings

from meiye.ledger.models import Account, Balance, Entry, Journal
from meiye.ledger.selectors import balance_of
from meiye.ledger.verification import verify_ledger
from tests.ledger.support import ORG, fire_deferred_checks, ledger_state

pytestmark = pytest.mark.django_db

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="deferred triggers: PostgreSQL")
sqlite_only = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite behaviour")


def _raw(sql: str, params: list[object]) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.fixture
def recharge(make_account, fund) -> Journal:
    return fund(make_account(), 1_000)


@pytest.mark.parametrize(
    ("sql", "param"),
    [
        ("UPDATE ledger_journal SET memo = 'edited' WHERE id = %s", "journal"),
        ("UPDATE ledger_entry SET amount = amount + 1 WHERE journal_id = %s", "journal"),
        ("UPDATE ledger_entry SET account_id = account_id WHERE journal_id = %s", "journal"),
    ],
)
def test_raw_update_of_a_journal_or_entry_is_refused(recharge, sql, param):
    # given
    before = ledger_state()
    memo_before = recharge.memo

    # when / then
    with pytest.raises(DatabaseError, match="append-only"):
        _raw(sql, [recharge.pk])
    assert ledger_state() == before
    assert Journal.objects.get(pk=recharge.pk).memo == memo_before
    assert sorted(Entry.objects.filter(journal=recharge).values_list("amount", flat=True)) == [-1_000, 1_000]


@pytest.mark.parametrize(
    "sql",
    ["DELETE FROM ledger_entry WHERE journal_id = %s", "DELETE FROM ledger_journal WHERE id = %s"],
)
@override_settings(MEIYE_ALLOW_PURGE=False)
def test_raw_delete_of_a_journal_or_entry_is_refused(recharge, sql):
    # given
    before = ledger_state()

    # when / then
    with pytest.raises(DatabaseError, match="append-only"):
        _raw(sql, [recharge.pk])
    assert ledger_state() == before


def test_a_raw_negative_balance_on_a_non_negative_account_fails_the_check_constraint(make_account):
    # given: an account whose balance row is missing (made outside the service, on purpose)
    account = Account.objects.create(organisation_id=ORG, owner_type="member", owner_id=1, asset="CNY", kind="wallet")

    # when / then
    with pytest.raises(DatabaseError):
        _raw(
            "INSERT INTO ledger_balance (account_id, amount, may_go_negative, version, updated_at) "
            "VALUES (%s, -1, %s, 0, CURRENT_TIMESTAMP)",
            [account.pk, False],
        )
    assert not Balance.objects.filter(account=account).exists()


def test_a_raw_update_to_a_negative_balance_fails_the_check_constraint(make_account, fund):
    # given
    wallet = make_account()
    fund(wallet, 100)

    # when / then
    with pytest.raises(DatabaseError):
        _raw("UPDATE ledger_balance SET amount = -1 WHERE account_id = %s", [wallet.pk])
    assert balance_of(wallet) == 100


@pytest.mark.ledger_drift
def test_a_raw_negative_balance_is_accepted_where_the_account_may_go_negative(make_account):
    # given
    revenue = make_account(owner_type="store", kind="revenue", may_go_negative=True)

    # when
    _raw("UPDATE ledger_balance SET amount = -1 WHERE account_id = %s", [revenue.pk])

    # then
    assert balance_of(revenue) == -1


def test_a_raw_zero_amount_entry_fails_the_check_constraint(recharge):
    # given
    account_id = Entry.objects.filter(journal=recharge).values_list("account_id", flat=True).first()
    before = ledger_state()

    # when / then
    with pytest.raises(DatabaseError):
        _raw(
            "INSERT INTO ledger_entry (journal_id, account_id, amount, asset) VALUES (%s, %s, 0, 'CNY')",
            [recharge.pk, account_id],
        )
    assert ledger_state() == before


def test_a_raw_entry_whose_asset_differs_from_its_account_is_refused(recharge):
    # given
    account_id = Entry.objects.filter(journal=recharge).values_list("account_id", flat=True).first()
    before = ledger_state()

    # when / then
    with pytest.raises(DatabaseError, match="asset"):
        _raw(
            "INSERT INTO ledger_entry (journal_id, account_id, amount, asset) VALUES (%s, %s, 5, 'PTS')",
            [recharge.pk, account_id],
        )
    assert ledger_state() == before


@pytest.mark.ledger_drift
@postgresql_only
def test_postgresql_refuses_an_unbalanced_journal_at_commit(recharge):
    # given
    account_id = Entry.objects.filter(journal=recharge).values_list("account_id", flat=True).first()
    before = ledger_state()

    # when: an extra entry is appended, and the transaction reaches its commit-time checks
    with pytest.raises(DatabaseError, match="does not net to zero"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO ledger_entry (journal_id, account_id, amount, asset) VALUES (%s, %s, 5, 'CNY')",
                [recharge.pk, account_id],
            )
        fire_deferred_checks()

    # then
    assert ledger_state() == before


@pytest.mark.ledger_drift
@sqlite_only
def test_sqlite_accepts_an_unbalanced_raw_entry_but_ledger_verify_reports_it(recharge):
    """SQLite has no deferred triggers: the service and ledger_verify are the guard there."""
    # given
    account_id = Entry.objects.filter(journal=recharge, amount__gt=0).values_list("account_id", flat=True).get()

    # when
    _raw(
        "INSERT INTO ledger_entry (journal_id, account_id, amount, asset) VALUES (%s, %s, 5, 'CNY')",
        [recharge.pk, account_id],
    )

    # then
    assert verify_ledger() == [
        f"account {account_id}: balance 1000 but entries sum to 1005 (drift -5)",
        f"journal {recharge.pk}: CNY entries sum to 5, not 0",
    ]
