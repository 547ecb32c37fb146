"""accounts_lock remembers account ids per process once the locking transaction commits, and locks by primary
key; a remembered id that no longer names the same account falls back to the identity lock."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from meiye.ledger import services
from meiye.ledger.services import AccountKey, accounts_lock
from tests.ledger.support import ORG

pytestmark = pytest.mark.django_db


def _keys(*owner_ids: int) -> list[AccountKey]:
    return [AccountKey("member", owner_id, "CNY", "wallet_principal") for owner_id in owner_ids]


def test_a_repeat_lock_selects_the_balance_rows_by_id(make_account, django_capture_on_commit_callbacks):
    first, second = make_account(owner_id=7001), make_account(owner_id=7002)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        accounts_lock(organisation_id=ORG, keys=_keys(7001, 7002))

    with transaction.atomic(), CaptureQueriesContext(connection) as ctx:
        locked = accounts_lock(organisation_id=ORG, keys=_keys(7002, 7001))

    (lock,) = [q["sql"] for q in ctx.captured_queries if "ledger_balance" in q["sql"]]
    assert 'a."id" = ' in lock  # the remembered ids are matched with the identities
    assert {locked.get(key).pk for key in _keys(7001, 7002)} == {first.pk, second.pk}


def test_a_stale_remembered_id_falls_back_to_the_identity_lock(make_account, django_capture_on_commit_callbacks):
    mine, other = make_account(owner_id=7101), make_account(owner_id=7102)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        accounts_lock(organisation_id=ORG, keys=_keys(7101))
    # As if 7101's id had been remembered from a transaction that rolled back and the id now names 7102's.
    services._KNOWN_IDS[(ORG, _keys(7101)[0].identity)] = other.pk

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        locked = accounts_lock(organisation_id=ORG, keys=_keys(7101))

    assert locked.get(_keys(7101)[0]).pk == mine.pk
    assert services._KNOWN_IDS[(ORG, _keys(7101)[0].identity)] == mine.pk


def test_an_id_is_remembered_only_when_its_transaction_commits(make_account):
    make_account(owner_id=7151)

    with transaction.atomic():  # the test's transaction never commits
        accounts_lock(organisation_id=ORG, keys=_keys(7151))

    assert (ORG, _keys(7151)[0].identity) not in services._KNOWN_IDS


def test_a_remembered_id_of_a_missing_row_falls_back_too(make_account):
    mine = make_account(owner_id=7201)
    services._KNOWN_IDS[(ORG, _keys(7201)[0].identity)] = mine.pk + 10_000

    with transaction.atomic():
        locked = accounts_lock(organisation_id=ORG, keys=_keys(7201))

    assert locked.get(_keys(7201)[0]).pk == mine.pk


def test_remembered_ids_are_per_organisation(make_account, django_capture_on_commit_callbacks):
    ours = make_account(owner_id=7301)
    theirs = make_account(owner_id=7301, organisation_id=ORG + 1)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        accounts_lock(organisation_id=ORG, keys=_keys(7301))

    with transaction.atomic():
        locked = accounts_lock(organisation_id=ORG + 1, keys=_keys(7301))

    assert locked.get(_keys(7301)[0]).pk == theirs.pk != ours.pk


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's planner")
def test_the_identity_lock_looks_each_account_up_in_the_unique_index(make_account):
    # An OR of seven identities made SQLite scan every account of the organisation (0.4 ms at 2,000 accounts).
    for owner_id in range(7201, 7261):
        make_account(owner_id=owner_id)
    with transaction.atomic(), CaptureQueriesContext(connection) as ctx:
        locked = accounts_lock(organisation_id=ORG, keys=_keys(*range(7201, 7208)))
    assert len({locked.get(key).pk for key in _keys(*range(7201, 7208))}) == 7
    (lock,) = [q["sql"] for q in ctx.captured_queries if "ledger_balance" in q["sql"]]

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + lock.replace(" FOR UPDATE OF b", ""))
        plan = " | ".join(str(row[-1]) for row in cursor.fetchall())
    assert "SCAN w" in plan  # the wanted list drives the join
    assert "organisation_id=? AND owner_type=? AND owner_id=? AND asset=? AND kind=?" in plan, plan
