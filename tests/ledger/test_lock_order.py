"""The ledger's lock order (ADR 0008): private accounts' balance rows first, shared (store, organisation) rows
last, each group in primary-key order; ``accounts_lock(defer_shared=True)`` names the shared accounts without
locking them and ``accounts_settle`` locks them and writes every balance change at the end."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from meiye.ledger import services
from meiye.ledger.models import Balance
from meiye.ledger.services import AccountKey, Posting, accounts_lock, accounts_settle, journals_post
from tests.ledger.support import ORG, fire_deferred_checks

pytestmark = pytest.mark.django_db

STORE_TENDER = AccountKey("store", 1, "CNY", "tender_wechat", may_go_negative=True)
STORE_REVENUE = AccountKey("store", 1, "CNY", "revenue", may_go_negative=True)


def _wallet(owner_id: int, *, may_go_negative: bool = False) -> AccountKey:
    return AccountKey("member", owner_id, "CNY", "wallet_principal", may_go_negative=may_go_negative)


def test_one_statement_locks_private_rows_before_shared_ones(make_account):
    # given: the store's accounts are older (lower ids) than the member's
    store = make_account(owner_type="store", owner_id=1, kind="revenue", may_go_negative=True)
    member = make_account(owner_id=7301)
    assert store.pk < member.pk

    with transaction.atomic():
        rows = services._lock_by_identity(ORG, {key.identity: key for key in (STORE_REVENUE, _wallet(7301))})

    # then: the rows come (and, on PostgreSQL, are locked) in the ledger's order
    assert [(row.account.owner_type, row.account_id) for row in rows] == [("member", member.pk), ("store", store.pk)]


WALLET = _wallet(7302, may_go_negative=True)  # a private account, even one that may go negative, is locked at once


def test_deferred_shared_accounts_are_locked_and_written_by_settle(make_account):
    make_account(owner_id=7302, may_go_negative=True)
    with transaction.atomic():
        with CaptureQueriesContext(connection) as ctx:
            locked = accounts_lock(organisation_id=ORG, keys=[STORE_TENDER, STORE_REVENUE, WALLET], defer_shared=True)
            journals_post(
                organisation_id=ORG,
                postings=[
                    Posting(
                        code="test.sale",
                        entries=[(locked.get(STORE_TENDER), -500), (locked.get(STORE_REVENUE), 500)],
                    ),
                    Posting(
                        code="test.sale",
                        entries=[(locked.get(WALLET), -300), (locked.get(STORE_REVENUE), 300)],
                    ),
                ],
                locked=locked,
            )
            before_settle = len(ctx.captured_queries)
            accounts_settle(locked)
        fire_deferred_checks()

        # the store's rows were not locked nor written until the settle, which is one statement for all rows
        before = [q["sql"] for q in ctx.captured_queries[:before_settle]]
        assert not any(sql.startswith('UPDATE "ledger_balance"') for sql in before)
        (lock,) = [sql for sql in before if 'FROM "ledger_balance"' in sql or 'JOIN "ledger_balance"' in sql]
        assert "'store'" not in lock.split("ORDER BY")[0]  # only the member's row is locked at first
        (settle,) = ctx.captured_queries[before_settle:]
        assert settle["sql"].startswith('UPDATE "ledger_balance"')
        amounts = dict(Balance.objects.filter(account__owner_id__in=[1, 7302]).values_list("account__kind", "amount"))
        assert amounts == {"tender_wechat": -500, "revenue": 800, "wallet_principal": -300}
        with pytest.raises(ValueError, match="deferred"):
            locked.balance(locked.get(STORE_REVENUE))
        assert locked.balance(locked.get(WALLET)) == -300


def test_settle_without_anything_posted_is_no_query(make_account):
    with transaction.atomic():
        locked = accounts_lock(organisation_id=ORG, keys=[STORE_TENDER], defer_shared=True)
        with CaptureQueriesContext(connection) as ctx:
            accounts_settle(locked)
    assert ctx.captured_queries == []
