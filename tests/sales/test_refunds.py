"""S-22: a refund undoes exactly what the bill did, in full or line by line."""

from __future__ import annotations

import pytest

from meiye.core.errors import ApplicationError, Conflict, PermissionDenied
from meiye.core.money import Money
from meiye.ledger.models import Entry
from meiye.ledger.verification import verify_ledger
from meiye.loyalty.models import PointsLot
from meiye.loyalty.services import points_spend, verify_points_lots
from meiye.sales import services as sales_services
from meiye.sales.models import BillLine, RefundTender, Tender
from meiye.sales.services import LineInput, TenderInput, bill_checkout, bill_refund
from tests.sales.support import balances, sales_state


@pytest.fixture
def refunder(manager_at_till):
    return manager_at_till


@pytest.fixture
def s05_bill(cashier, manager, manager_pin, care, s05_member):
    return bill_checkout(
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
        idempotency_key="s05",
    )


def test_S22_full_refund_of_the_S05_bill_returns_points_principal_and_bonus(refunder, s05_bill, s05_member):
    # given: after S-05 the member holds 550.00 / 110.00 / 11,450 points
    assert balances(s05_member) == {"principal": 55_000, "bonus": 11_000, "points": 11_450, "growth": 45_000}

    # when
    refund = bill_refund(actor=refunder, bill=s05_bill, reason="顾客不满意", idempotency_key="s22-full")

    # then: 1,000 offset points, 450.00 principal and 90.00 bonus back; the 450 earned points taken back
    assert (refund.is_full, refund.amount_fen, refund.points_restored, refund.points_taken_back) == (
        True,
        55_000,
        1_000,
        450,
    )
    assert balances(s05_member) == {"principal": 100_000, "bonus": 20_000, "points": 12_000, "growth": 0}
    sv = RefundTender.objects.get(refund=refund, tender__kind="stored_value")
    assert (sv.amount_fen, sv.principal_fen, sv.bonus_fen) == (54_000, 45_000, 9_000)
    # the bill's journals are reversed exactly
    assert refund.cny_journal.reversal_of_id == s05_bill.cny_journal_id
    assert refund.points_restore_journal.reversal_of_id == s05_bill.points_spend_journal_id
    assert refund.points_take_back_journal.reversal_of_id == s05_bill.points_earn_journal_id
    assert BillLine.objects.get(bill=s05_bill).refunded_quantity == 1
    assert verify_ledger() == []
    assert verify_points_lots() == []


def test_S22_spent_earned_points_become_debt_and_the_next_earning_repays_it_first(
    cashier, refunder, member, care, serum
):
    # given: a cash bill earns 600 points, which the member spends at once (e.g. in the points mall)
    bill = bill_checkout(
        actor=cashier,
        member=member,
        lines=[LineInput(item_id=care.pk)],
        tenders=[TenderInput(kind="cash", amount=Money.parse("600.00"))],
        idempotency_key="earns-600",
    )
    points_spend(
        actor=cashier, member=member, points=600, reference_type="test.Mall", reference_id="1", idempotency_key="mall"
    )
    assert balances(member)["points"] == 0

    # when: the bill is refunded
    bill_refund(actor=refunder, bill=bill, reason="退款", idempotency_key="debt")

    # then: the 600 earned points are taken back although spent: the balance is −600
    assert balances(member)["points"] == -600
    assert verify_points_lots() == []

    # when: the next bill earns 600 × 1 + 250 × 2 = 1,100 points
    next_bill = bill_checkout(
        actor=cashier,
        member=member,
        lines=[LineInput(item_id=care.pk), LineInput(item_id=serum.pk)],
        tenders=[TenderInput(kind="wechat", amount=Money.parse("850.00"))],
        idempotency_key="repays",
    )

    # then: it repays the debt first; only the 500 left are spendable
    assert next_bill.points_earned == 1_100
    assert balances(member)["points"] == 500
    assert PointsLot.objects.get(journal=next_bill.points_earn_journal).remaining == 500
    assert verify_points_lots() == []
    assert verify_ledger() == []


@pytest.fixture
def split_bill(cashier, member, care, lifting, serum, recharge, give_points):
    """2,350.00: basic care 600.00, 3 × serum 250.00, anti-ageing 1,000.00; paid 10,000 points (100.00),
    stored value 1,250.00 (from principal 1,000.00 + bonus 500.00) and WeChat 1,000.00."""
    recharge(member, "1000.00", bonus="500.00")
    give_points(member, 20_000)
    return bill_checkout(
        actor=cashier,
        member=member,
        lines=[LineInput(item_id=care.pk), LineInput(item_id=serum.pk, quantity=3), LineInput(item_id=lifting.pk)],
        tenders=[
            TenderInput(kind="points", points=10_000),
            TenderInput(kind="stored_value", amount=Money.parse("1250.00")),
            TenderInput(kind="wechat", amount=Money.parse("1000.00"), external_ref="wx-1"),
        ],
        idempotency_key="split",
    )


def test_the_split_bill_earns_on_wechat_and_principal_only(split_bill, member):
    # stored value 1,250.00 in proportion to 1,000.00 : 500.00 → 833.33 principal + 416.67 bonus
    sv = Tender.objects.get(bill=split_bill, kind="stored_value")
    assert (sv.principal_fen, sv.bonus_fen) == (83_333, 41_667)
    # earning money 1,000.00 + 833.33 = 1,833.33 over the lines 600 : 750 : 1,000 by largest remainder
    lines = list(split_bill.lines.order_by("pk"))
    assert [line.earning_fen for line in lines] == [46_808, 58_511, 78_014]
    # floor(468.08 × 1) + floor(585.11 × 2) + floor(780.14 × 3)
    assert [line.points_earned for line in lines] == [468, 1_170, 2_340]
    assert split_bill.points_earned == 3_978
    assert balances(member) == {
        "principal": 100_000 - 83_333,
        "bonus": 50_000 - 41_667,
        "points": 20_000 - 10_000 + 3_978,
        "growth": 183_333,
    }
    assert verify_ledger() == []


def test_S22_partial_refund_by_line_gives_back_exact_shares(refunder, split_bill, member):
    # given
    serum_line = split_bill.lines.order_by("pk")[1]

    # when: one of the three serums (250.00) is refunded
    refund = bill_refund(
        actor=refunder, bill=split_bill, lines=[(serum_line.pk, 1)], reason="产品过敏", idempotency_key="one-serum"
    )

    # then: 250.00 over points 100.00 : stored value 1,250.00 : WeChat 1,000.00 by largest remainder
    parts = {p.tender.kind: p for p in RefundTender.objects.filter(refund=refund).select_related("tender")}
    assert {kind: p.amount_fen for kind, p in parts.items()} == {
        "points": 1_064,
        "stored_value": 13_298,
        "wechat": 10_638,
    }
    # stored value back in the proportion charged (833.33 : 416.67)
    assert (parts["stored_value"].principal_fen, parts["stored_value"].bonus_fen) == (8_865, 4_433)
    # 10.64 of the 100.00 offset is 1,064 points; a third of the serum's 1,170 earned points, 390, go
    assert (refund.amount_fen, refund.points_restored, refund.points_taken_back, refund.earning_fen) == (
        25_000,
        1_064,
        390,
        19_503,
    )
    assert balances(member) == {
        "principal": 100_000 - 83_333 + 8_865,
        "bonus": 50_000 - 41_667 + 4_433,
        "points": 20_000 - 10_000 + 3_978 + 1_064 - 390,
        "growth": 183_333 - 19_503,
    }
    wechat_account_entries = Entry.objects.filter(journal=refund.cny_journal, account__kind="tender_wechat")
    assert [e.amount for e in wechat_account_entries] == [10_638]
    assert serum_line.__class__.objects.get(pk=serum_line.pk).refunded_quantity == 1
    assert verify_ledger() == []
    assert verify_points_lots() == []

    # when: the rest of the bill is refunded
    rest = bill_refund(actor=refunder, bill=split_bill, reason="整单退", idempotency_key="the-rest")

    # then: together the two refunds gave back exactly what the bill took
    assert rest.amount_fen == 235_000 - 25_000
    assert not rest.is_full
    assert balances(member) == {"principal": 100_000, "bonus": 50_000, "points": 20_000, "growth": 0}
    assert verify_ledger() == []
    assert verify_points_lots() == []


def test_refunds_cannot_exceed_what_was_paid(refunder, split_bill):
    serum_line = split_bill.lines.order_by("pk")[1]
    bill_refund(actor=refunder, bill=split_bill, lines=[(serum_line.pk, 2)], reason="退两件", idempotency_key="two")
    state = sales_state()

    with pytest.raises(ApplicationError) as refused:
        bill_refund(
            actor=refunder, bill=split_bill, lines=[(serum_line.pk, 2)], reason="再退两件", idempotency_key="again"
        )
    assert refused.value.code == "refund.exceeds_paid"
    assert sales_state() == state

    bill_refund(actor=refunder, bill=split_bill, reason="全部", idempotency_key="all")
    state = sales_state()
    with pytest.raises(ApplicationError) as refused:
        bill_refund(actor=refunder, bill=split_bill, reason="又一次", idempotency_key="once-more")
    assert refused.value.code == "refund.exceeds_paid"
    assert sales_state() == state
    assert verify_ledger() == []


def test_refund_to_stored_value_puts_cash_into_principal(cashier, refunder, member, care):
    bill = bill_checkout(
        actor=cashier,
        member=member,
        lines=[LineInput(item_id=care.pk)],
        tenders=[TenderInput(kind="cash", amount=Money.parse("600.00"))],
        idempotency_key="cash-bill",
    )

    refund = bill_refund(
        actor=refunder, bill=bill, destination="stored_value", reason="转储值", idempotency_key="to-wallet"
    )

    assert balances(member) == {"principal": 60_000, "bonus": 0, "points": 0, "growth": 0}
    legs = sorted(
        (e.account.kind, e.amount) for e in Entry.objects.filter(journal=refund.cny_journal).select_related("account")
    )
    assert legs == [("revenue", -60_000), ("wallet_principal", 60_000)]
    assert verify_ledger() == []


def test_refund_is_idempotent_and_needs_the_refund_permission(cashier, refunder, s05_bill, s05_member):
    state = sales_state()
    with pytest.raises(PermissionDenied):
        bill_refund(actor=cashier, bill=s05_bill, reason="x", idempotency_key="no-right")
    assert sales_state() == state

    first = bill_refund(actor=refunder, bill=s05_bill, reason="退款", idempotency_key="once")
    state = sales_state()
    assert bill_refund(actor=refunder, bill=s05_bill, reason="退款", idempotency_key="once").pk == first.pk
    assert sales_state() == state
    with pytest.raises(Conflict) as refused:
        bill_refund(actor=refunder, bill=s05_bill, reason="另一个原因", idempotency_key="once")
    assert refused.value.code == "idempotency.key_reused"
    assert sales_state() == state


def test_refund_hooks_run_inside_the_refund(refunder, s05_bill, monkeypatch):
    seen = []
    monkeypatch.setattr(
        sales_services, "REFUND_HOOKS", [lambda ctx: seen.append((ctx.bill.pk, ctx.is_full, ctx.quantities))]
    )
    bill_refund(actor=refunder, bill=s05_bill, reason="退款", idempotency_key="hooked")
    line = s05_bill.lines.get()
    assert seen == [(s05_bill.pk, True, {line.pk: 1})]
