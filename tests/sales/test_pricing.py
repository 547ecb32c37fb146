"""The pricing pipeline and manual discounts with approval (S-20)."""

from __future__ import annotations

import pytest

from meiye.audit.models import AuditLog
from meiye.core.errors import ApplicationError
from meiye.core.money import Money
from meiye.ledger.verification import verify_ledger
from meiye.sales.models import BillLine
from meiye.sales.pricing import PRICING_STEPS, discount_floor_fen, points_offset_cap_fen, prorate_cumulative
from meiye.sales.services import LineInput, TenderInput, bill_add_line, bill_checkout, bill_open
from tests.sales.support import sales_state


def test_pricing_steps_are_named_and_in_order():
    assert [step.name for step in PRICING_STEPS] == [
        "list_price",
        "store_price",
        "member_price",
        "promotions_and_coupons",
        "manual_adjustment",
    ]


def test_rounding_rules():
    assert discount_floor_fen(60_000, 9_500) == 57_000
    assert discount_floor_fen(99_99, 9_500) == 9_500  # 9,499.05 fen rounds up to 9,500
    assert points_offset_cap_fen(55_000, 1_000) == 5_500
    assert points_offset_cap_fen(99_99, 1_000) == 999  # 999.9 fen rounds down
    assert [prorate_cumulative(1_000, done, 1, 3) for done in range(3)] == [333, 333, 334]


def test_S20_cashier_alone_may_go_down_to_95_percent(cashier, receptionist, care, member):
    # given
    bill = bill_open(actor=cashier, member=member)

    # when: 570.00 is 95% of the member price 600.00
    line = bill_add_line(actor=cashier, bill=bill, item=care, unit_price=Money.parse("570.00"))

    # then
    assert (line.unit_price_fen, line.line_total_fen, line.approved_by_id) == (57_000, 57_000, None)
    assert line.price_steps[-1] == {
        "step": "manual_adjustment",
        "unit_price_fen": 57_000,
        "reason": "手工改价 Manual price",
    }
    audit = AuditLog.objects.get(action="sales.price_override")
    assert (audit.staff_id, audit.detail["unit_price_fen"], audit.detail["approved_by"]) == (
        receptionist.pk,
        57_000,
        None,
    )


@pytest.mark.parametrize("price", ["480.00", "569.99"])
def test_S20_below_95_percent_without_approval_is_refused_and_nothing_written(cashier, care, member, price):
    # given
    bill = bill_open(actor=cashier, member=member)
    state = sales_state()

    # when
    with pytest.raises(ApplicationError) as refused:
        bill_add_line(actor=cashier, bill=bill, item=care, unit_price=Money.parse(price))

    # then
    assert refused.value.code == "pricing.approval_required"
    assert refused.value.field == "unit_price"
    assert "95%" in refused.value.message_zh and "95%" in refused.value.message_en
    assert sales_state() == state


def test_S20_with_the_managers_pin_80_percent_is_allowed_and_the_approver_recorded(
    cashier, manager, manager_pin, care, member
):
    # given
    bill = bill_open(actor=cashier, member=member)

    # when: 480.00 is 80% of 600.00
    line = bill_add_line(
        actor=cashier,
        bill=bill,
        item=care,
        unit_price=Money.parse("480.00"),
        approver=manager,
        approval_pin=manager_pin,
    )

    # then
    assert (line.unit_price_fen, line.approved_by_id) == (48_000, manager.pk)
    assert line.price_steps[-1]["reason"] == f"手工改价 Manual price（{manager} 批准 approved）"
    audit = AuditLog.objects.get(action="sales.price_override")
    assert audit.detail == {
        "line": line.pk,
        "item": care.pk,
        "list_price_fen": 60_000,
        "unit_price_fen": 48_000,
        "approved_by": manager.pk,
    }


def test_S20_the_manager_at_the_till_approves_herself(manager_at_till, manager, care):
    bill = bill_open(actor=manager_at_till)
    line = bill_add_line(actor=manager_at_till, bill=bill, item=care, unit_price=Money.parse("480.00"))
    assert line.approved_by_id == manager.pk


@pytest.mark.parametrize("who", ["manager_wrong_pin", "beautician", "other_store_manager"])
def test_S20_a_wrong_pin_or_an_approver_without_the_right_is_refused(
    cashier, manager, manager_pin, beautician, care, who, org, store2
):
    from tests.factories import StaffFactory

    approver, pin = {
        "manager_wrong_pin": (manager, "1111"),
        "beautician": (beautician, ""),
        "other_store_manager": (StaffFactory(organisation=org, position="store_manager", stores=[store2]), ""),
    }[who]
    if who == "other_store_manager":
        from meiye.org.services import approval_pin_set

        approval_pin_set(staff=approver, pin="9999")
        pin = "9999"
    state = sales_state()
    with pytest.raises(ApplicationError) as refused:
        bill_checkout(
            actor=cashier,
            lines=[
                LineInput(item_id=care.pk, unit_price=Money.parse("480.00"), approver_id=approver.pk, approval_pin=pin)
            ],
            tenders=[TenderInput(kind="cash", amount=Money.parse("480.00"))],
            idempotency_key="approval",
        )
    assert refused.value.code == "pricing.approval_required"
    assert sales_state() == state


def test_a_manual_price_may_not_raise_the_price(cashier, care):
    bill = bill_open(actor=cashier)
    with pytest.raises(ApplicationError) as refused:
        bill_add_line(actor=cashier, bill=bill, item=care, unit_price=Money.parse("600.01"))
    assert refused.value.code == "pricing.above_price"
    assert not BillLine.objects.exists()


def test_S20_approved_discount_checks_out_and_the_ledger_balances(cashier, manager, manager_pin, care):
    bill = bill_checkout(
        actor=cashier,
        lines=[
            LineInput(
                item_id=care.pk,
                quantity=2,
                unit_price=Money.parse("480.00"),
                approver_id=manager.pk,
                approval_pin=manager_pin,
            )
        ],
        tenders=[TenderInput(kind="wechat", amount=Money.parse("960.00"))],
        idempotency_key="approved-bill",
    )
    assert (bill.list_total_fen, bill.discount_total_fen, bill.payable_total_fen) == (120_000, 24_000, 96_000)
    assert verify_ledger() == []


def test_line_staff_must_work_in_the_bill_store(cashier, care, receptionist2):
    from meiye.core.errors import ValidationFailed
    from meiye.sales.models import BillLine
    from meiye.sales.services import bill_add_line, bill_open

    bill = bill_open(actor=cashier)
    with pytest.raises(ValidationFailed) as exc:
        bill_add_line(actor=cashier, bill=bill, item=care, performed_by=receptionist2)
    assert (exc.value.code, exc.value.field) == ("sales.staff_not_in_store", "performed_by")
    assert BillLine.objects.count() == 0
