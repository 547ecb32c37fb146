"""The prepaid liability report reconciles with the ledger, per store and in total, today and in the past."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.db.models import F

from meiye.cards.liability import liability_csv_rows, prepaid_liability
from meiye.catalog.services import category_save, item_save
from meiye.core.errors import NotFound, PermissionDenied
from meiye.core.money import Money
from meiye.giftcards.services import gift_card_sell
from meiye.ledger.models import Balance
from meiye.ledger.selectors import pending_deltas
from meiye.packages.models import MemberPackageItem
from meiye.packages.services import (
    ProductItemInput,
    package_product_save,
    package_sessions_use,
    packages_issue_for_bill,
)
from meiye.sales.services import LineInput, TenderInput, bill_checkout
from meiye.wallet.services import (
    CardProductInput,
    RechargeRuleInput,
    card_product_save,
    recharge_rule_save,
    wallet_recharge,
)

ZONE = ZoneInfo("Asia/Shanghai")
DAY1 = date(2026, 11, 10)
DAY2 = date(2026, 11, 12)


def at(day: date, hour: int = 12):
    return mock.patch("django.utils.timezone.now", return_value=datetime.combine(day, time(hour), tzinfo=ZONE))


class _Line:
    def __init__(self, pk: int, item_id: int, total: int) -> None:
        self.pk, self.item_id, self.quantity, self.line_total_fen = pk, item_id, 1, total


def _ledger(owner_type: str, kinds: tuple[str, ...], asset: str | None = "CNY") -> int:
    qs = Balance.objects.filter(account__owner_type=owner_type, account__kind__in=kinds)
    qs = qs.filter(account__asset=asset) if asset else qs.filter(account__asset__startswith="SES:")
    # a shared account's balance is its row plus its pending deltas (ADR 0009)
    return sum(qs.annotate(current=F("amount") + pending_deltas("account_id")).values_list("current", flat=True))


@pytest.fixture
def world(make_member, store1, store2, receptionist, hq_admin, actor_for):
    """Day 1: A recharges 3,000.00 in store 1, B 1,000.00 in store 2, C 5,000.00 in store 2 under the rule
    充5000送1000 in 5 parts (200.00 bonus now, 800.00 pending); A buys the S-19 facial card (1,980.00) and uses
    3 sessions, and a 30-day spa time card (900.00); store 1 sells a gift card of 500.00 for 450.00.
    Day 2: A spends 540.00 of stored value in store 1 and recharges 500.00 more."""
    cashier = actor_for(receptionist, store1)
    hq1, hq2 = actor_for(hq_admin, store1), actor_for(hq_admin, store2)
    a = make_member(store1, name="王丽")
    b = make_member(store2, name="李娜")
    c = make_member(store2, name="赵敏")
    product = card_product_save(actor=hq1, data=CardProductInput(code="standard", name="储值卡", is_default=True))
    recharge_rule_save(
        actor=hq1, product=product, data=RechargeRuleInput(threshold_fen=500_000, bonus_fen=100_000, instalments=5)
    )
    care = category_save(
        actor=hq1,
        code="care",
        name="护理",
        kind="service",
        earning_category="basic_care",
        commission_category="service",
    )
    facial = item_save(
        actor=hq1, code="facial", name="基础面部护理", category=care, price=Money.parse("298.00"), duration_minutes=60
    )
    massage = item_save(
        actor=hq1, code="massage", name="按摩", category=care, price=Money.parse("540.00"), duration_minutes=60
    )
    card = package_product_save(
        actor=hq1,
        code="facial-10",
        name="面部护理10次卡",
        price=Money.parse("1980.00"),
        kind="count",
        items=[ProductItemInput(service_id=facial.pk, count=10, validity_value=12)],
    )
    bath = item_save(
        actor=hq1, code="bath", name="水疗", category=care, price=Money.parse("100.00"), duration_minutes=30
    )
    spa_month = package_product_save(
        actor=hq1,
        code="spa-month",
        name="水疗月卡",
        price=Money.parse("900.00"),
        kind="time",
        items=[ProductItemInput(service_id=bath.pk, count=None, validity_value=30, validity_unit="days")],
    )
    with at(DAY1):
        wallet_recharge(actor=cashier, member=a, amount=Money.parse("3000.00"), tender="wechat", idempotency_key="r1")
        wallet_recharge(actor=hq2, member=b, amount=Money.parse("1000.00"), tender="cash", idempotency_key="r2")
        wallet_recharge(actor=hq2, member=c, amount=Money.parse("5000.00"), tender="card", idempotency_key="r4")
        packages_issue_for_bill(
            actor=cashier, bill_id=7002, member=a, lines=[_Line(7002, spa_month.item_id, 90000)], on=DAY1
        )
        (package,) = packages_issue_for_bill(
            actor=cashier, bill_id=7001, member=a, lines=[_Line(7001, card.item_id, 198000)], on=DAY1
        )
        item = MemberPackageItem.objects.get(member_package=package)
        package_sessions_use(
            actor=cashier,
            member=a,
            member_item_id=item.pk,
            sessions=3,
            on=DAY1,
            performed_by_id=None,
            idempotency_key="use-3",
        )
        gift_card_sell(
            actor=cashier,
            face=Money.parse("500.00"),
            price=Money.parse("450.00"),
            tender="cash",
            expires_on=DAY1 + timedelta(days=365),
            idempotency_key="gc-1",
        )
    with at(DAY2):
        bill_checkout(
            actor=cashier,
            member=a,
            lines=[LineInput(item_id=massage.pk)],
            tenders=[TenderInput(kind="stored_value", amount=Money.parse("540.00"))],
            idempotency_key="spend",
        )
        wallet_recharge(actor=cashier, member=a, amount=Money.parse("500.00"), tender="wechat", idempotency_key="r3")
    return {"hq": hq1, "a": a, "b": b, "item": item}


def test_liability_report_reconciles_with_the_ledger(world, store1, store2):
    report = prepaid_liability(world["hq"], on=DAY2)
    by_store = {row.store_id: row for row in report.rows}

    # Totals are exactly the ledger's balances.
    principal = 300000 - 54000 + 50000 + 100000 + 500000
    assert report.totals.principal_fen == _ledger("member", ("wallet_principal",)) == principal == 896000
    assert report.totals.bonus_fen == _ledger("member", ("wallet_bonus",)) == 20000
    assert report.totals.pending_bonus_fen == _ledger("member", ("wallet_bonus_pending",)) == 80000
    assert report.totals.gift_card_fen == _ledger("giftcard", ("gift_card",)) == 50000
    assert report.totals.sessions == _ledger("member", ("package_sessions",), asset=None) == 7
    # S-19: 1,980.00 − floor(1,980.00 × 3 / 10) = 1,386.00; the time card after 2 of its 30 days:
    # 900.00 − floor(900.00 × 2 / 30) = 840.00
    assert report.totals.package_fen == 138600 + 84000
    assert report.totals.total_fen == 896000 + 20000 + 80000 + 222600 + 50000 == 1268600
    assert report.totals.total_fen == sum(row.total_fen for row in report.rows)

    # Per store: by the journal's store (stored value), the package's and the gift card's selling store.
    one, two = by_store[store1.pk], by_store[store2.pk]
    assert (one.principal_fen, one.bonus_fen, one.pending_bonus_fen) == (296000, 0, 0)
    assert (one.sessions, one.package_fen, one.gift_card_fen) == (7, 222600, 50000)
    assert (two.principal_fen, two.bonus_fen, two.pending_bonus_fen) == (600000, 20000, 80000)
    assert (two.sessions, two.package_fen, two.gift_card_fen) == (0, 0, 0)


def test_a_past_date_leaves_out_later_moves(world, store1, store2):
    report = prepaid_liability(world["hq"], on=DAY1)
    by_store = {row.store_id: row for row in report.rows}
    assert by_store[store1.pk].principal_fen == 300000  # before the 540.00 spend and the 500.00 recharge
    assert by_store[store2.pk].principal_fen == 600000
    assert report.totals.package_fen == 138600 + 90000  # the time card's first day: its whole share
    assert report.totals.sessions == 7

    before = prepaid_liability(world["hq"], on=DAY1 - timedelta(days=1))
    assert before.totals.total_fen == 0
    assert before.totals.sessions == 0


def test_the_report_needs_its_permission_and_scopes_stores(world, receptionist, manager, store1, store2, actor_for):
    with pytest.raises(PermissionDenied):
        prepaid_liability(actor_for(receptionist, store1), on=DAY2)
    boss = actor_for(manager, store1)
    report = prepaid_liability(boss, on=DAY2)
    assert [row.store_id for row in report.rows] == [store1.pk]
    assert report.totals.principal_fen == 296000
    with pytest.raises(NotFound):
        prepaid_liability(boss, on=DAY2, store=store2)


def test_one_store_and_the_csv(world, store1):
    report = prepaid_liability(world["hq"], on=DAY2, store=store1)
    rows = list(liability_csv_rows(report))
    assert rows[0] == ["日期 Date", "2026-11-12"]
    assert rows[2][0] == store1.name
    assert rows[2][1] == "2960.00"
    assert rows[-1][-1] == "5686.00"  # 2,960.00 + 1,386.00 + 840.00 + 500.00


def test_the_report_takes_few_queries(world, django_assert_max_num_queries):
    with django_assert_max_num_queries(6):
        prepaid_liability(world["hq"], on=DAY2)
