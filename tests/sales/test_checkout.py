"""Checkout: pricing, tenders, what earns (S-02, S-05), and what is refused (nothing written)."""

from __future__ import annotations

import pytest

from meiye.audit.models import AuditLog
from meiye.core.errors import ApplicationError, Conflict
from meiye.core.money import Money
from meiye.ledger.models import Entry
from meiye.ledger.verification import verify_ledger
from meiye.loyalty.models import PointsLot
from meiye.loyalty.services import verify_points_lots
from meiye.sales.models import BillStatus, Tender
from meiye.sales.services import (
    LineInput,
    TenderInput,
    bill_add_line,
    bill_checkout,
    bill_complete,
    bill_open,
    bill_remove_line,
    bill_void,
    sales_settings_save,
)
from tests.sales.support import balances, sales_state


def _legs(journal) -> list[tuple[str, str, int]]:
    return sorted(
        (e.account.owner_type, e.account.kind, e.amount)
        for e in Entry.objects.filter(journal=journal).select_related("account")
    )


def test_S05_only_real_money_earns_with_manual_discount_for_coupon(
    cashier, manager, manager_pin, care, s05_member, store1
):
    # given: the Regular member of S-05 (principal 1,000.00, bonus 200.00, 12,000 points); the 50.00-off
    # coupon arrives with a later issue, so a manual price of 550.00 approved by the manager stands in for it
    before = balances(s05_member)
    assert (before["principal"], before["bonus"], before["points"]) == (100_000, 20_000, 12_000)

    # when
    bill = bill_checkout(
        actor=cashier,
        member=s05_member,
        lines=[
            LineInput(
                item_id=care.pk, unit_price=Money.parse("550.00"), approver_id=manager.pk, approval_pin=manager_pin
            )
        ],
        tenders=[
            TenderInput(kind="points", points=1_000),
            TenderInput(kind="stored_value", amount=Money.parse("540.00")),
        ],
        idempotency_key="s05-checkout",
    )

    # then: payable 550.00 = 10.00 points + 540.00 stored value (450.00 principal + 90.00 bonus)
    assert bill.status == BillStatus.COMPLETED
    assert bill.number == "S1-000001"
    assert (bill.list_total_fen, bill.discount_total_fen, bill.payable_total_fen) == (60_000, 5_000, 55_000)
    sv = Tender.objects.get(bill=bill, kind="stored_value")
    assert (sv.amount_fen, sv.principal_fen, sv.bonus_fen) == (54_000, 45_000, 9_000)
    points_tender = Tender.objects.get(bill=bill, kind="points")
    assert (points_tender.amount_fen, points_tender.points_used) == (1_000, 1_000)
    # only the principal earns: 450.00 × 1 point per 元
    line = bill.lines.get()
    assert (line.earning_fen, line.points_earned, line.approved_by_id) == (45_000, 450, manager.pk)
    assert (bill.earning_total_fen, bill.points_earned) == (45_000, 450)
    assert balances(s05_member) == {"principal": 55_000, "bonus": 11_000, "points": 11_450, "growth": 45_000}
    # one CNY journal for the bill
    assert _legs(bill.cny_journal) == [
        ("member", "wallet_bonus", -9_000),
        ("member", "wallet_principal", -45_000),
        ("store", "points_offset", -1_000),
        ("store", "revenue", 55_000),
    ]
    assert bill.cny_journal.code == "sales.bill"
    assert PointsLot.objects.get(journal=bill.points_earn_journal).amount == 450
    assert verify_ledger() == []
    assert verify_points_lots() == []


def test_S02_category_rates_on_a_cash_bill(cashier, member, care, lifting, serum, hq):
    # given: three lines at 350.00 / 1,000.00 / 250.00 (a store price for the basic care)
    from meiye.catalog.services import store_price_set

    store_price_set(actor=hq, store=cashier.store, item=care, price=Money.parse("350.00"))

    # when
    bill = bill_checkout(
        actor=cashier,
        member=member,
        lines=[LineInput(item_id=care.pk), LineInput(item_id=lifting.pk), LineInput(item_id=serum.pk)],
        tenders=[TenderInput(kind="cash", amount=Money.parse("1600.00"), received=Money.parse("1600.00"))],
        idempotency_key="s02",
    )

    # then: 350 + 3,000 + 500 = 3,850 points
    assert [(line.line_total_fen, line.points_earned) for line in bill.lines.order_by("pk")] == [
        (35_000, 350),
        (100_000, 3_000),
        (25_000, 500),
    ]
    assert bill.points_earned == 3_850
    assert balances(member)["points"] == 3_850
    care_line = bill.lines.order_by("pk").first()
    assert care_line.price_steps == [
        {"step": "list_price", "unit_price_fen": 60_000, "reason": "标价 List price"},
        {"step": "store_price", "unit_price_fen": 35_000, "reason": "门店价 Store price (静安店)"},
    ]
    assert (care_line.list_price_fen, bill.discount_total_fen) == (35_000, 0)
    assert verify_ledger() == []


def test_walk_in_pays_cash_with_change_and_card(cashier, care, serum):
    # when: 850.00 paid 500.00 card + 350.00 cash from 400.00 handed over
    bill = bill_checkout(
        actor=cashier,
        lines=[LineInput(item_id=care.pk), LineInput(item_id=serum.pk)],
        tenders=[
            TenderInput(kind="card", amount=Money.parse("500.00"), external_ref="POS-778812"),
            TenderInput(kind="cash", amount=Money.parse("350.00"), received=Money.parse("400.00")),
        ],
        idempotency_key="walk-in",
    )

    # then
    cash = Tender.objects.get(bill=bill, kind="cash")
    assert (cash.amount_fen, cash.received_fen, cash.change_fen) == (35_000, 40_000, 5_000)
    assert Tender.objects.get(bill=bill, kind="card").external_ref == "POS-778812"
    assert (bill.member_id, bill.points_earned, bill.earning_total_fen) == (None, 0, 0)
    assert _legs(bill.cny_journal) == [
        ("store", "revenue", 85_000),
        ("store", "tender_card", -50_000),
        ("store", "tender_cash", -35_000),
    ]
    assert AuditLog.objects.filter(action="sales.bill_complete", object_id=str(bill.pk)).count() == 1
    assert verify_ledger() == []


def test_bill_built_step_by_step_then_completed_and_then_immutable(cashier, member, care, serum, recharge):
    # given
    recharge(member, "1000.00")
    bill = bill_open(actor=cashier, member=member)
    bill_add_line(actor=cashier, bill=bill, item=care)
    extra = bill_add_line(actor=cashier, bill=bill, item=serum, quantity=2)
    bill.refresh_from_db()
    assert bill.payable_total_fen == 110_000
    bill_remove_line(actor=cashier, bill=bill, line=extra)
    bill.refresh_from_db()
    assert (bill.status, bill.payable_total_fen) == (BillStatus.OPEN, 60_000)

    # when: 600.00 split between stored value and WeChat
    done = bill_complete(
        actor=cashier,
        bill=bill,
        tenders=[
            TenderInput(kind="stored_value", amount=Money.parse("400.00")),
            TenderInput(kind="wechat", amount=Money.parse("200.00"), external_ref="wx-4200001"),
        ],
        idempotency_key="step-by-step",
    )

    # then: everything is real money (no bonus): 600 points
    assert (done.status, done.points_earned) == (BillStatus.COMPLETED, 600)
    assert balances(member) == {"principal": 60_000, "bonus": 0, "points": 600, "growth": 60_000}
    # and the completed bill is immutable
    state = sales_state()
    with pytest.raises(Conflict) as refused:
        bill_add_line(actor=cashier, bill=bill, item=serum)
    assert refused.value.code == "sales.bill_not_open"
    with pytest.raises(Conflict):
        bill_void(actor=cashier, bill=bill)
    assert sales_state() == state
    assert verify_ledger() == []


def test_void_an_open_bill(cashier, care):
    bill = bill_open(actor=cashier)
    bill_add_line(actor=cashier, bill=bill, item=care)
    voided = bill_void(actor=cashier, bill=bill, reason="顾客改约")
    assert (voided.status, voided.void_reason) == (BillStatus.VOIDED, "顾客改约")
    with pytest.raises(Conflict):
        bill_complete(
            actor=cashier, bill=bill, tenders=[TenderInput(kind="cash", amount=Money(60_000))], idempotency_key="v"
        )


@pytest.mark.parametrize(
    ("tenders", "code"),
    [
        ([TenderInput(kind="cash", amount=Money.parse("599.99"))], "sales.tender_mismatch"),
        ([TenderInput(kind="cash", amount=Money.parse("600.00"), received=Money.parse("500"))], "sales.cash_short"),
        ([TenderInput(kind="package", package_item_id=1, sessions=1)], "sales.member_required"),
        ([TenderInput(kind="gift_card", amount=Money.parse("600.00"))], "sales.invalid_tender"),
        ([TenderInput(kind="bitcoin", amount=Money.parse("600.00"))], "sales.invalid_tender"),
        ([TenderInput(kind="stored_value", amount=Money.parse("600.00"))], "sales.member_required"),
        (
            [TenderInput(kind="points", points=100), TenderInput(kind="cash", amount=Money.parse("599.00"))],
            "sales.member_required",
        ),
    ],
)
def test_walk_in_refusals_write_nothing(cashier, care, tenders, code):
    state = sales_state()
    with pytest.raises(ApplicationError) as refused:
        bill_checkout(actor=cashier, lines=[LineInput(item_id=care.pk)], tenders=tenders, idempotency_key="refused")
    assert refused.value.code == code
    assert sales_state() == state


@pytest.mark.parametrize(
    ("tenders", "code"),
    [
        # 10% of 600.00 is 60.00: 6,001 points would pay 60.01
        (
            [TenderInput(kind="points", points=6_001), TenderInput(kind="cash", amount=Money.parse("539.99"))],
            "sales.points_offset_cap",
        ),
        # more points than the member has (she has 12,000; cap raised so the cap is not what refuses)
        (
            [TenderInput(kind="points", points=5_000), TenderInput(kind="cash", amount=Money.parse("550.00"))],
            "points.insufficient",
        ),
        # more stored value than principal + bonus
        (
            [TenderInput(kind="stored_value", amount=Money.parse("600.00"))],
            "wallet.insufficient_balance",
        ),
    ],
)
def test_member_refusals_write_nothing(cashier, member, care, give_points, recharge, tenders, code):
    # given: 4,000 points and 500.00 of stored value
    give_points(member, 4_000)
    recharge(member, "400.00", bonus="100.00")
    state = sales_state()
    before = balances(member)

    # when
    with pytest.raises(ApplicationError) as refused:
        bill_checkout(
            actor=cashier, member=member, lines=[LineInput(item_id=care.pk)], tenders=tenders, idempotency_key="no"
        )

    # then
    assert refused.value.code == code
    assert sales_state() == state
    assert balances(member) == before
    assert verify_ledger() == []


def test_points_offset_at_another_rate_must_convert_to_whole_fen(cashier, member, care, give_points, hq):
    # given: 90 points per 元 (the Gold rate of S-06) set for the store
    sales_settings_save(actor=hq, store=cashier.store, points_per_yuan_offset=90)
    give_points(member, 10_000)

    # when: 4,000 points are 44.444… 元 — refused; 3,960 points are exactly 44.00 (S-06)
    with pytest.raises(ApplicationError) as refused:
        bill_checkout(
            actor=cashier,
            member=member,
            lines=[LineInput(item_id=care.pk)],
            tenders=[TenderInput(kind="points", points=4_000), TenderInput(kind="cash", amount=Money.parse("555.56"))],
            idempotency_key="odd",
        )
    assert refused.value.code == "sales.points_not_whole_fen"
    bill = bill_checkout(
        actor=cashier,
        member=member,
        lines=[LineInput(item_id=care.pk)],
        tenders=[TenderInput(kind="points", points=3_960), TenderInput(kind="cash", amount=Money.parse("556.00"))],
        idempotency_key="whole",
    )

    # then: the points pay 44.00; the cash earns 556 points, credited after the spend
    assert Tender.objects.get(bill=bill, kind="points").amount_fen == 4_400
    assert balances(member)["points"] == 10_000 - 3_960 + 556
    assert verify_ledger() == []


def test_points_earned_cannot_pay_for_the_same_bill(cashier, member, care):
    # a member without points cannot offset with the points this bill will earn
    with pytest.raises(ApplicationError) as refused:
        bill_checkout(
            actor=cashier,
            member=member,
            lines=[LineInput(item_id=care.pk)],
            tenders=[TenderInput(kind="points", points=500), TenderInput(kind="cash", amount=Money.parse("595.00"))],
            idempotency_key="same-bill",
        )
    assert refused.value.code == "points.insufficient"
    assert balances(member)["points"] == 0


def test_bill_numbers_run_per_store(cashier, receptionist2, actor_for, store2, care):
    other = actor_for(receptionist2, store2)
    numbers = [
        bill_checkout(
            actor=actor,
            lines=[LineInput(item_id=care.pk)],
            tenders=[TenderInput(kind="cash", amount=Money(60_000))],
            idempotency_key=f"n{i}",
        ).number
        for i, actor in enumerate([cashier, cashier, other, cashier])
    ]
    assert numbers == ["S1-000001", "S1-000002", "S2-000001", "S1-000003"]


def test_a_free_bill_needs_no_tender_and_posts_no_money(manager_at_till, care, manager):
    # given: the manager gives the service away (price 0.00, her own approval)
    bill = bill_checkout(
        actor=manager_at_till,
        lines=[LineInput(item_id=care.pk, unit_price=Money(0))],
        tenders=[],
        idempotency_key="free",
    )

    # then
    assert (bill.status, bill.payable_total_fen, bill.discount_total_fen) == (BillStatus.COMPLETED, 0, 60_000)
    assert bill.cny_journal_id is None
    assert bill.lines.get().approved_by_id == manager.pk
    assert verify_ledger() == []


def test_checkout_refuses_an_item_of_another_organisation_or_no_lines(cashier, care):
    state = sales_state()
    with pytest.raises(ApplicationError) as refused:
        bill_checkout(
            actor=cashier,
            lines=[LineInput(item_id=care.pk + 999)],
            tenders=[TenderInput(kind="cash", amount=Money(60_000))],
            idempotency_key="ghost",
        )
    assert refused.value.code == "catalog.item_not_found"
    with pytest.raises(ApplicationError) as refused:
        bill_checkout(actor=cashier, lines=[], tenders=[], idempotency_key="empty")
    assert refused.value.code == "sales.no_lines"
    assert sales_state() == state
