"""``journals_post_bulk``: many two-legged journals by bulk SQL, the same rows ``journals_post`` writes."""

from __future__ import annotations

import pytest
from django.db import transaction

from meiye.core.errors import ApplicationError, Conflict, ValidationFailed
from meiye.ledger import services
from meiye.ledger.models import Balance, Entry, Journal
from meiye.ledger.selectors import balance_of
from meiye.ledger.services import (
    AccountKey,
    BulkLine,
    Leg,
    Posting,
    accounts_lock,
    journal_post,
    journals_post,
    journals_post_bulk,
)
from meiye.ledger.verification import verify_ledger
from tests.ledger.support import ORG, OTHER_ORG, fire_deferred_checks, ledger_state

pytestmark = pytest.mark.django_db


def _keys(*owners: int) -> list[AccountKey]:
    return [
        AccountKey("organisation", ORG, "PTS", "points_expired", may_go_negative=True),
        *(AccountKey("member", owner, "PTS", "points") for owner in owners),
    ]


def _funded(make_account, fund, owners: dict[int, int]) -> dict[int, object]:
    accounts = {}
    for owner, amount in owners.items():
        accounts[owner] = make_account(owner_id=owner, asset="PTS", kind="points")
        fund(accounts[owner], amount)
    return accounts


def _rows(journal_ids: list[int]) -> list[tuple]:
    return [
        (
            journal.code,
            journal.reference_type,
            journal.reference_id,
            journal.staff_id,
            journal.store_id,
            journal.idempotency_key,
            journal.payload_hash,
            journal.memo,
            sorted((entry.account.owner_id, entry.amount, entry.asset) for entry in journal.entries.all()),
        )
        for journal in Journal.objects.filter(pk__in=journal_ids).order_by("pk").prefetch_related("entries__account")
    ]


def test_bulk_writes_what_journals_post_writes(make_account, fund):
    # given: two organisations' worth of the same members, funded alike
    accounts = _funded(make_account, fund, {1: 500, 2: 300, 3: 700})

    # when: the same three expiries, once through journals_post and once in bulk
    with transaction.atomic():
        locked = accounts_lock(organisation_id=ORG, keys=_keys(1, 2, 3))
        expired = locked.get(_keys()[0])
        slow = journals_post(
            organisation_id=ORG,
            postings=[
                Posting(
                    code="points.expire",
                    entries=[Leg(accounts[owner], -amount), Leg(expired, amount)],
                    reference_type="members.Member",
                    reference_id=str(owner),
                    staff_id=None,
                    idempotency_key=f"slow:{owner}",
                    memo="expired before 2026-06-01",
                )
                for owner, amount in ((1, 200), (2, 300))
            ],
            locked=locked,
        )
    before = {b.account_id: (b.amount, b.version) for b in Balance.objects.all()}
    with transaction.atomic():
        locked = accounts_lock(organisation_id=ORG, keys=_keys(1, 2, 3))
        ids = journals_post_bulk(
            organisation_id=ORG,
            code="points.expire",
            counter=locked.get(_keys()[0]),
            lines=[
                BulkLine(accounts[1], -100, "1", "bulk:1"),
                BulkLine(accounts[3], -700, "3", "bulk:3"),
            ],
            locked=locked,
            reference_type="members.Member",
            memo="expired before 2026-06-01",
        )
        # the locked balances are kept current, as journals_post keeps them
        assert locked.balance(accounts[1]) == 200 and locked.balance(accounts[3]) == 0
    fire_deferred_checks()

    # then: one journal per line, in order, shaped exactly like journals_post's
    assert len(ids) == 2 and ids == sorted(ids)
    assert [row[2] for row in _rows(ids)] == ["1", "3"]
    slow_row, bulk_row = _rows([slow[0].pk])[0], _rows([ids[0]])[0]
    assert slow_row[:5] == bulk_row[:5] and slow_row[7:] == (bulk_row[7], [(1, -200, "PTS"), (ORG, 200, "PTS")])
    assert bulk_row[8] == [(1, -100, "PTS"), (ORG, 100, "PTS")]
    # the payload hash is the one journal_post computes: a replay through journal_post matches it
    replay = journal_post(
        organisation_id=ORG,
        code="points.expire",
        entries=[(accounts[3], -700), (expired, 700)],
        reference_type="members.Member",
        reference_id="3",
        idempotency_key="bulk:3",
        memo="expired before 2026-06-01",
    )
    assert replay.pk == ids[1]
    after = {b.account_id: (b.amount, b.version) for b in Balance.objects.all()}
    assert after[accounts[1].pk] == (before[accounts[1].pk][0] - 100, before[accounts[1].pk][1] + 1)
    assert after[accounts[3].pk] == (0, before[accounts[3].pk][1] + 1)
    # the organisation's counter-account is shared (ADR 0009): balance deltas, its row untouched
    assert after[expired.pk] == before[expired.pk]
    assert balance_of(expired) == 200 + 300 + 100 + 700
    assert after[accounts[2].pk] == before[accounts[2].pk]
    assert verify_ledger() == []


def test_bulk_across_several_statements_keeps_balances_equal_to_entries(make_account, fund, monkeypatch):
    # given: statements of 3 lines, 8 members
    monkeypatch.setattr(services, "BULK_STATEMENT_ROWS", 3)
    owners = {owner: 100 * owner for owner in range(1, 9)}
    accounts = _funded(make_account, fund, owners)

    # when
    with transaction.atomic():
        locked = accounts_lock(organisation_id=ORG, keys=_keys(*owners))
        ids = journals_post_bulk(
            organisation_id=ORG,
            code="points.expire",
            counter=locked.get(_keys()[0]),
            lines=[BulkLine(accounts[owner], -owner, str(owner), f"k:{owner}") for owner in owners],
            locked=locked,
        )
    fire_deferred_checks()

    # then
    assert [Journal.objects.get(pk=pk).reference_id for pk in ids] == [str(owner) for owner in owners]
    assert Entry.objects.filter(journal_id__in=ids).count() == 16
    assert {owner: Balance.objects.get(account=accounts[owner]).amount for owner in owners} == {
        owner: 100 * owner - owner for owner in owners
    }
    assert verify_ledger() == []


def test_bulk_replay_returns_the_first_ids_and_a_changed_payload_is_a_conflict(make_account, fund):
    accounts = _funded(make_account, fund, {1: 500, 2: 500})
    lines = [BulkLine(accounts[1], -100, "1", "r:1"), BulkLine(accounts[2], -200, "2", "r:2")]

    def post(batch: list[BulkLine]) -> list[int]:
        with transaction.atomic():
            locked = accounts_lock(organisation_id=ORG, keys=_keys(1, 2))
            return journals_post_bulk(
                organisation_id=ORG, code="points.expire", counter=locked.get(_keys()[0]), lines=batch, locked=locked
            )

    first = post(lines)
    state = ledger_state()
    assert post(lines) == first
    assert ledger_state() == state
    with pytest.raises(Conflict) as refused:
        post([lines[0], BulkLine(accounts[2], -201, "2", "r:2")])
    assert refused.value.code == "ledger.idempotency_conflict"
    assert ledger_state() == state


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("zero", "ledger.invalid_amount"),
        ("overdraw", "ledger.insufficient_balance"),
        ("unlocked", "ledger.unknown_account"),
        ("other_asset", "ledger.unbalanced"),
    ],
)
def test_a_refused_bulk_writes_nothing(make_account, fund, line, code):
    # given
    accounts = _funded(make_account, fund, {1: 500, 2: 100})
    stranger = make_account(owner_id=9, asset="PTS", kind="points")
    cash = make_account(owner_id=1, asset="CNY", kind="wallet_principal")
    bad = {
        "zero": BulkLine(accounts[2], 0, "2"),
        "overdraw": BulkLine(accounts[2], -101, "2"),  # the second journal takes her below zero
        "unlocked": BulkLine(stranger, -1, "9"),
        "other_asset": BulkLine(cash, -1, "1"),
    }[line]
    state = ledger_state()

    # when / then
    with pytest.raises(ApplicationError) as refused, transaction.atomic():
        keys = [*_keys(1, 2), AccountKey("member", 1, "CNY", "wallet_principal")]
        locked = accounts_lock(organisation_id=ORG, keys=keys)
        journals_post_bulk(
            organisation_id=ORG,
            code="points.expire",
            counter=locked.get(_keys()[0]),
            lines=[BulkLine(accounts[1], -100, "1"), bad],
            locked=locked,
        )
    assert refused.value.code == code
    assert ledger_state() == state


def test_bulk_refuses_locks_of_another_organisation(make_account, fund):
    accounts = _funded(make_account, fund, {1: 500})
    with pytest.raises(ValidationFailed) as refused, transaction.atomic():
        locked = accounts_lock(organisation_id=ORG, keys=_keys(1))
        journals_post_bulk(
            organisation_id=OTHER_ORG,
            code="points.expire",
            counter=locked.get(_keys()[0]),
            lines=[BulkLine(accounts[1], -1)],
            locked=locked,
        )
    assert refused.value.code == "ledger.foreign_account"


def test_an_empty_bulk_writes_nothing(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert journals_post_bulk(organisation_id=ORG, code="x", counter=None, lines=[], locked=None) == []  # type: ignore[arg-type]
