"""Checkout is a hot path: its number of queries is pinned so N+1 queries cannot creep in."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from meiye.core.money import Money
from meiye.sales.services import LineInput, TenderInput, bill_checkout

# Measured 18 on SQLite and on PostgreSQL (61 before the checkout posted in one batch), of which 2 are this
# test's own SAVEPOINT/RELEASE around the service's transaction (in production: BEGIN/COMMIT). The other 16
# (15 since the member's visible stores became a subquery of her read): the replay check of the bill's key;
# the store with its checkout rules (sales settings, spend order, points lifetime); the member (member_get,
# scoped by her visible stores in the same query); the items with their store prices and earning
# rates; the bill; every balance row the bill posts to, locked in one statement (the shared counter-accounts
# read, not locked, ADR 0009); the journals (one INSERT), their entries (one INSERT), the balances (one
# UPDATE) and on PostgreSQL the shared accounts' balance deltas (one INSERT); the points lot; the lines; the
# tenders; the bill number (UPDATE … RETURNING, taken last) and the bill's completion (on PostgreSQL one
# statement since session 10; two on SQLite); the audit row. Tiers add none since session 12: the tier she
# holds, her earned tier, her 12-month growth and her growth balance's version ride on the store's row, the ladder
# comes from the process's copy (``loyalty.tiers.tier_view_known``; one read more when the ladder's version has
# changed), and the upgrade check after the bill (``tier_after_bill``; it writes only on an upgrade) reads her
# earned tier and growth again only when the version the bill locked is not the one seen (``GrowthSeen``).
# Stored value adds none: the member is read before the transaction with her card's status, whether she has a
# payment password and whether the store requires one (``cards.services.stored_value_authorize``, S-17), and
# that read stands for member_get's.
MAX_CHECKOUT_QUERIES = 20


def test_checkout_of_three_lines_split_tender_with_points_earned_query_count(
    cashier, member, care, lifting, serum, recharge, django_assert_max_num_queries
):
    # given: the store's accounts and the member's points and growth accounts exist, as on any day but the first
    recharge(member, "1000.00")
    bill_checkout(
        actor=cashier,
        member=member,
        lines=[LineInput(item_id=care.pk)],
        tenders=[TenderInput(kind="wechat", amount=Money(60_000))],
        idempotency_key="warm",
    )

    # when / then: 3 lines (1,850.00), stored value 850.00 + WeChat 1,000.00, 4,100 points earned
    with django_assert_max_num_queries(MAX_CHECKOUT_QUERIES):
        bill = bill_checkout(
            actor=cashier,
            member=member,
            lines=[LineInput(item_id=care.pk), LineInput(item_id=lifting.pk), LineInput(item_id=serum.pk)],
            tenders=[
                TenderInput(kind="stored_value", amount=Money.parse("850.00")),
                TenderInput(kind="wechat", amount=Money.parse("1000.00")),
            ],
            idempotency_key="measured",
        )
    assert bill.points_earned == 600 + 3_000 + 500


def test_a_replayed_checkout_is_one_query(cashier, care, django_assert_num_queries):
    request = {
        "actor": cashier,
        "lines": [LineInput(item_id=care.pk)],
        "tenders": [TenderInput(kind="cash", amount=Money(60_000))],
        "idempotency_key": "replay",
    }
    first = bill_checkout(**request)
    with django_assert_num_queries(1):
        assert bill_checkout(**request).pk == first.pk


def test_a_stored_value_checkout_reads_the_member_once(cashier, member, care, recharge):
    recharge(member, "1000.00")

    with CaptureQueriesContext(connection) as ctx:
        bill_checkout(
            actor=cashier,
            member=member,
            lines=[LineInput(item_id=care.pk)],
            tenders=[TenderInput(kind="stored_value", amount=Money.parse("600.00"))],
            idempotency_key="once",
        )

    member_reads = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith('SELECT "members_member"."id"')]
    assert len(member_reads) == 1  # the payment gate's, which also answers for member_get


def test_on_postgresql_the_bill_is_completed_and_numbered_by_one_statement(cashier, member, care, lifting):
    import pytest

    from meiye.sales.models import Bill, BillStatus

    if connection.vendor != "postgresql":
        pytest.skip("SQLite takes the number, then writes it with the completion")
    warm = [TenderInput(kind="wechat", amount=Money(60_000))]
    bill_checkout(actor=cashier, member=member, lines=[LineInput(item_id=care.pk)], tenders=warm, idempotency_key="w")

    with CaptureQueriesContext(connection) as ctx:
        bill = bill_checkout(
            actor=cashier,
            member=member,
            lines=[LineInput(item_id=care.pk), LineInput(item_id=lifting.pk)],
            tenders=[TenderInput(kind="wechat", amount=Money.parse("1600.00"))],
            idempotency_key="one-statement",
        )

    updates = [q["sql"] for q in ctx.captured_queries if 'UPDATE "sales_bill"' in q["sql"]]
    assert len(updates) == 1 and '"status" = ' in updates[0] and "number = " in updates[0]
    stored = Bill.objects.get(pk=bill.pk)
    assert (stored.status, stored.number, stored.payable_total_fen) == (BillStatus.COMPLETED, bill.number, 160_000)
    assert stored.completed_at is not None and stored.cny_journal_id is not None
