"""Reads: scoped bill access, the receipt, the bill list and the daily close."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from meiye.core.errors import NotFound, PermissionDenied
from meiye.core.money import Money
from meiye.sales.selectors import bill_get, bills_list, daily_close, receipt
from meiye.sales.services import LineInput, TenderInput, bill_checkout, bill_open, bill_refund
from meiye.wallet.services import wallet_recharge


def _today():
    return timezone.localdate(timezone=ZoneInfo("Asia/Shanghai"))


@pytest.fixture
def s05_bill(cashier, manager, manager_pin, care, s05_member):
    return bill_checkout(
        actor=cashier,
        member=s05_member,
        lines=[
            LineInput(
                item_id=care.pk,
                unit_price=Money.parse("550.00"),
                performed_by_id=manager.pk,
                approver_id=manager.pk,
                approval_pin=manager_pin,
            )
        ],
        tenders=[
            TenderInput(kind="points", points=1_000),
            TenderInput(kind="stored_value", amount=Money.parse("540.00")),
        ],
        idempotency_key="s05",
    )


def test_receipt_shows_discounts_with_reasons_tenders_and_balances_after(
    cashier, manager, s05_bill, s05_member, recharge
):
    # given: a later recharge must not change what this receipt says
    recharge(s05_member, "100.00")

    # when
    printed = receipt(cashier, s05_bill)

    # then
    assert (printed.number, printed.member_no, printed.tier_name) == ("S1-000001", s05_member.member_no, "")
    (line,) = printed.lines
    assert (line.name, line.list_price, line.unit_price, line.line_total) == (
        "基础护理",
        Money(60_000),
        Money(55_000),
        Money(55_000),
    )
    assert [(d.step, d.unit_price) for d in line.discounts] == [("manual_adjustment", Money(55_000))]
    assert line.discounts[0].reason == f"手工改价 Manual price（{manager} 批准 approved）"
    assert (line.approved_by, line.performed_by, line.points_earned) == (str(manager), str(manager), 450)
    assert [(t.kind, t.amount, t.principal, t.bonus, t.points_used) for t in printed.tenders] == [
        ("points", Money(1_000), Money(0), Money(0), 1_000),
        ("stored_value", Money(54_000), Money(45_000), Money(9_000), 0),
    ]
    assert (printed.list_total, printed.discount_total, printed.payable_total) == (
        Money(60_000),
        Money(5_000),
        Money(55_000),
    )
    assert (printed.wallet_principal_after, printed.wallet_bonus_after, printed.points_after) == (
        Money(55_000),
        Money(11_000),
        11_450,
    )
    assert printed.points_earned == 450


def test_bills_are_store_scoped(cashier, receptionist2, beautician, hq_admin, actor_for, store2, s05_bill):
    assert bill_get(cashier, s05_bill.pk).pk == s05_bill.pk
    assert bill_get(actor_for(hq_admin), s05_bill.pk).pk == s05_bill.pk
    with pytest.raises(NotFound):
        bill_get(actor_for(receptionist2, store2), s05_bill.pk)
    with pytest.raises(PermissionDenied):
        bill_get(actor_for(beautician), s05_bill.pk)


def test_bills_list_by_day_and_status(cashier, care, s05_bill, store1):
    open_bill = bill_open(actor=cashier)
    today = _today()
    assert [b.pk for b in bills_list(cashier, store1, date_from=today, date_to=today)] == [open_bill.pk, s05_bill.pk]
    assert [b.pk for b in bills_list(cashier, store1, status="completed")] == [s05_bill.pk]
    assert list(bills_list(cashier, store1, date_from=today + timedelta(days=1))) == []


def test_daily_close(cashier, manager_at_till, member, care, serum, store1):
    # given: a cash recharge of 1,000.00; a walk-in pays 600.00 cash (1,000.00 handed over) and is refunded;
    # the member pays 2 × 250.00 with 200.00 WeChat + 300.00 stored value and returns one bottle
    wallet_recharge(actor=cashier, member=member, amount=Money.parse("1000.00"), tender="cash", idempotency_key="r")
    walk_in = bill_checkout(
        actor=cashier,
        lines=[LineInput(item_id=care.pk)],
        tenders=[TenderInput(kind="cash", amount=Money.parse("600.00"), received=Money.parse("1000.00"))],
        idempotency_key="walk-in",
    )
    member_bill = bill_checkout(
        actor=cashier,
        member=member,
        lines=[LineInput(item_id=serum.pk, quantity=2)],
        tenders=[
            TenderInput(kind="wechat", amount=Money.parse("200.00")),
            TenderInput(kind="stored_value", amount=Money.parse("300.00")),
        ],
        idempotency_key="member-bill",
    )
    bill_refund(actor=manager_at_till, bill=walk_in, reason="顾客取消", idempotency_key="refund-1")
    serum_line = member_bill.lines.get()
    bill_refund(
        actor=manager_at_till, bill=member_bill, lines=[(serum_line.pk, 1)], reason="退一瓶", idempotency_key="refund-2"
    )

    # when
    close = daily_close(manager_at_till, store1, _today())

    # then
    assert (close.bills_completed, close.sales_total, close.discount_total) == (2, Money(110_000), Money(0))
    assert close.by_tender == {"cash": Money(60_000), "stored_value": Money(30_000), "wechat": Money(20_000)}
    assert close.by_category == {"basic_care": Money(60_000), "retail": Money(50_000)}
    assert (close.refunds_count, close.refunds_total) == (2, Money(85_000))
    # the bottle's 250.00 in proportion 200 : 300 → 100.00 WeChat + 150.00 stored value
    assert close.refunds_by_tender == {"cash": Money(60_000), "stored_value": Money(15_000), "wechat": Money(10_000)}
    assert close.refunds_by_category == {"basic_care": Money(60_000), "retail": Money(25_000)}
    # the drawer: 1,000.00 recharge + 600.00 sale in, 600.00 refund out
    assert (close.cash_in, close.cash_refunded, close.cash_expected) == (Money(160_000), Money(60_000), Money(100_000))
    assert close.takings_by_tender == {"cash": Money(100_000), "wechat": Money(10_000)}
    # the walk-in earns nothing; the member's 200.00 WeChat + 300.00 principal at 2 points per 元 (retail)
    assert close.points_earned == 1_000
    # another day is empty
    other = daily_close(manager_at_till, store1, _today() - timedelta(days=1))
    assert (other.bills_completed, other.cash_expected, other.by_tender) == (0, Money(0), {})


def test_daily_close_needs_the_permission(cashier, store1):
    with pytest.raises(PermissionDenied):
        daily_close(cashier, store1, _today())
