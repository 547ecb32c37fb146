"""Changing a line of an open bill in place (``bill_line_update``): quantity, staff, manual price (S-20)."""

from __future__ import annotations

import pytest

from meiye.audit.models import AuditLog
from meiye.core.errors import ApplicationError
from meiye.core.money import Money
from meiye.sales.models import Bill, BillLine
from meiye.sales.services import (
    CLEAR,
    TenderInput,
    bill_add_line,
    bill_complete,
    bill_line_update,
    bill_open,
)
from tests.sales.support import sales_state


def _lines(bill: Bill) -> list[tuple[int, str, int, int]]:
    return list(
        BillLine.objects.filter(bill=bill).order_by("pk").values_list("pk", "name", "quantity", "line_total_fen")
    )


def _approved_line(cashier, member, care, manager, manager_pin):
    """An open bill with one care line at 480.00, below the cashier's floor, approved by the manager (S-20)."""
    bill = bill_open(actor=cashier, member=member)
    line = bill_add_line(
        actor=cashier,
        bill=bill,
        item=care,
        unit_price=Money.parse("480.00"),
        approver=manager,
        approval_pin=manager_pin,
    )
    return bill, line


def test_a_new_quantity_changes_the_line_in_place_and_keeps_its_place(cashier, member, care, serum, lifting):
    # given: 基础护理 600.00, 精华液 250.00, 抗衰紧致 1,000.00
    bill = bill_open(actor=cashier, member=member)
    first = bill_add_line(actor=cashier, bill=bill, item=care)
    middle = bill_add_line(actor=cashier, bill=bill, item=serum)
    last = bill_add_line(actor=cashier, bill=bill, item=lifting)

    # when: three serums
    changed = bill_line_update(actor=cashier, bill=bill, line=middle, quantity=3)

    # then: same row, same place, new totals
    assert changed.pk == middle.pk
    assert _lines(bill) == [
        (first.pk, "基础护理", 1, 60_000),
        (middle.pk, "精华液", 3, 75_000),
        (last.pk, "抗衰紧致", 1, 100_000),
    ]
    bill.refresh_from_db()
    assert (bill.list_total_fen, bill.discount_total_fen, bill.payable_total_fen) == (235_000, 0, 235_000)
    audit = AuditLog.objects.get(action="sales.line_update")
    assert (audit.object_id, audit.staff_id) == (str(bill.pk), cashier.staff.pk)
    assert audit.detail == {
        "line": middle.pk,
        "item": serum.pk,
        "before": {
            "quantity": 1,
            "unit_price_fen": 25_000,
            "line_total_fen": 25_000,
            "manual_price_fen": None,
            "performed_by": None,
            "sold_by": None,
            "approved_by": None,
        },
        "after": {
            "quantity": 3,
            "unit_price_fen": 25_000,
            "line_total_fen": 75_000,
            "manual_price_fen": None,
            "performed_by": None,
            "sold_by": None,
            "approved_by": None,
        },
    }
    assert not AuditLog.objects.filter(action="sales.price_override").exists()


def test_S20_an_approved_price_stays_approved_when_only_the_quantity_changes(
    cashier, manager, manager_pin, member, care
):
    # given: 480.00 (80% of 600.00) approved by the manager with her PIN
    bill, line = _approved_line(cashier, member, care, manager, manager_pin)

    # when: two of them, no PIN this time
    changed = bill_line_update(actor=cashier, bill=bill, line=line, quantity=2)

    # then
    assert (changed.quantity, changed.unit_price_fen, changed.line_total_fen, changed.approved_by_id) == (
        2,
        48_000,
        96_000,
        manager.pk,
    )
    assert [s["step"] for s in changed.price_steps] == ["list_price", "manual_adjustment"]
    assert changed.price_steps[-1]["reason"] == f"手工改价 Manual price（{manager} 批准 approved）"
    assert Bill.objects.get(pk=bill.pk).payable_total_fen == 96_000
    # the price and its approval did not change: no second price-override row
    assert AuditLog.objects.filter(action="sales.price_override").count() == 1
    assert AuditLog.objects.get(action="sales.line_update").detail["after"]["approved_by"] == manager.pk


def test_S20_the_approval_also_holds_when_the_form_resends_the_same_price_and_approver(
    cashier, manager, manager_pin, member, care, beautician
):
    bill, line = _approved_line(cashier, member, care, manager, manager_pin)

    changed = bill_line_update(
        actor=cashier,
        bill=bill,
        line=line,
        quantity=1,
        unit_price=Money.parse("480.00"),
        performed_by=beautician,
        approver=manager,
        approval_pin="",
    )

    assert (changed.unit_price_fen, changed.approved_by_id, changed.performed_by_id) == (
        48_000,
        manager.pk,
        beautician.pk,
    )


def test_S20_a_higher_price_still_below_the_floor_keeps_the_approval(cashier, manager, manager_pin, member, care):
    bill, line = _approved_line(cashier, member, care, manager, manager_pin)

    changed = bill_line_update(actor=cashier, bill=bill, line=line, unit_price=Money.parse("500.00"))

    assert (changed.unit_price_fen, changed.approved_by_id) == (50_000, manager.pk)
    overrides = AuditLog.objects.filter(action="sales.price_override").order_by("pk")
    assert [row.detail["unit_price_fen"] for row in overrides] == [48_000, 50_000]


@pytest.mark.parametrize("pin", ["", "0000"])
def test_S20_a_price_lower_than_the_approved_one_asks_again_and_writes_nothing(
    cashier, manager, manager_pin, member, care, pin
):
    # given
    bill, line = _approved_line(cashier, member, care, manager, manager_pin)
    state = sales_state()

    # when: 470.00 is lower than the 480.00 approved
    with pytest.raises(ApplicationError) as refused:
        bill_line_update(
            actor=cashier,
            bill=bill,
            line=line,
            quantity=2,
            unit_price=Money.parse("470.00"),
            approver=manager,
            approval_pin=pin,
        )

    # then
    assert refused.value.code == "pricing.approval_required"
    assert refused.value.field == "unit_price"
    assert sales_state() == state
    assert BillLine.objects.filter(pk=line.pk).values_list("quantity", "unit_price_fen").get() == (1, 48_000)


def test_S20_a_lower_price_with_the_pin_is_approved_again(cashier, manager, manager_pin, member, care):
    bill, line = _approved_line(cashier, member, care, manager, manager_pin)

    changed = bill_line_update(
        actor=cashier,
        bill=bill,
        line=line,
        unit_price=Money.parse("470.00"),
        approver=manager,
        approval_pin=manager_pin,
    )

    assert (changed.unit_price_fen, changed.approved_by_id) == (47_000, manager.pk)
    assert AuditLog.objects.filter(action="sales.price_override").count() == 2


def test_S20_an_unapproved_line_going_below_the_floor_needs_the_manager(cashier, member, care):
    bill = bill_open(actor=cashier, member=member)
    line = bill_add_line(actor=cashier, bill=bill, item=care, unit_price=Money.parse("570.00"))
    state = sales_state()

    with pytest.raises(ApplicationError) as refused:
        bill_line_update(actor=cashier, bill=bill, line=line, unit_price=Money.parse("569.99"))

    assert refused.value.code == "pricing.approval_required"
    assert sales_state() == state


def test_clearing_the_manual_price_goes_back_to_the_member_price_and_drops_the_approval(
    cashier, manager, manager_pin, member, care
):
    bill, line = _approved_line(cashier, member, care, manager, manager_pin)

    changed = bill_line_update(actor=cashier, bill=bill, line=line, unit_price=CLEAR)

    assert (changed.unit_price_fen, changed.approved_by_id) == (60_000, None)
    assert [s["step"] for s in changed.price_steps] == ["list_price"]
    assert Bill.objects.get(pk=bill.pk).payable_total_fen == 60_000


def test_a_price_back_above_the_floor_needs_no_approval_any_more(cashier, manager, manager_pin, member, care):
    bill, line = _approved_line(cashier, member, care, manager, manager_pin)

    changed = bill_line_update(actor=cashier, bill=bill, line=line, unit_price=Money.parse("580.00"))

    assert (changed.unit_price_fen, changed.approved_by_id) == (58_000, None)
    assert changed.price_steps[-1]["reason"] == "手工改价 Manual price"


def test_staff_none_keeps_and_clear_takes_off(cashier, member, care, beautician, receptionist):
    bill = bill_open(actor=cashier, member=member)
    line = bill_add_line(actor=cashier, bill=bill, item=care, performed_by=beautician, sold_by=receptionist)

    kept = bill_line_update(actor=cashier, bill=bill, line=line, quantity=2)
    assert (kept.performed_by_id, kept.sold_by_id) == (beautician.pk, receptionist.pk)

    cleared = bill_line_update(actor=cashier, bill=bill, line=line, sold_by=CLEAR)
    assert (cleared.performed_by_id, cleared.sold_by_id, cleared.quantity) == (beautician.pk, None, 2)


def test_a_manual_price_is_kept_when_only_the_staff_change(cashier, member, care, beautician):
    bill = bill_open(actor=cashier, member=member)
    line = bill_add_line(actor=cashier, bill=bill, item=care, unit_price=Money.parse("570.00"))

    changed = bill_line_update(actor=cashier, bill=bill, line=line, performed_by=beautician)

    assert (changed.unit_price_fen, changed.performed_by_id) == (57_000, beautician.pk)
    assert AuditLog.objects.filter(action="sales.price_override").count() == 1


@pytest.mark.parametrize("quantity", [0, -1, 10_000])
def test_an_invalid_quantity_is_refused_and_nothing_changes(cashier, member, care, quantity):
    bill = bill_open(actor=cashier, member=member)
    line = bill_add_line(actor=cashier, bill=bill, item=care)
    state = sales_state()

    with pytest.raises(ApplicationError) as refused:
        bill_line_update(actor=cashier, bill=bill, line=line, quantity=quantity)

    assert (refused.value.code, refused.value.field) == ("sales.invalid_quantity", "quantity")
    assert sales_state() == state


def test_a_line_of_another_bill_is_not_found(cashier, member, care):
    bill = bill_open(actor=cashier, member=member)
    other = bill_open(actor=cashier, member=member)
    line = bill_add_line(actor=cashier, bill=other, item=care)
    state = sales_state()

    with pytest.raises(ApplicationError) as refused:
        bill_line_update(actor=cashier, bill=bill, line=line, quantity=2)

    assert refused.value.code == "sales.line_not_found"
    assert sales_state() == state


def test_a_completed_bill_cannot_change_and_a_changed_bill_checks_out(cashier, member, care, serum):
    # given: a bill whose serum line went from 1 to 2
    bill = bill_open(actor=cashier, member=member)
    bill_add_line(actor=cashier, bill=bill, item=care)
    line = bill_add_line(actor=cashier, bill=bill, item=serum)
    bill_line_update(actor=cashier, bill=bill, line=line, quantity=2)

    # when: paid 1,100.00 in cash
    done = bill_complete(
        actor=cashier,
        bill=bill,
        tenders=[TenderInput(kind="cash", amount=Money.parse("1100.00"))],
        idempotency_key="line-update-pay",
    )

    # then: basic care 1 point per 元, retail 2
    assert (done.payable_total_fen, done.points_earned) == (110_000, 600 + 1_000)
    state = sales_state()
    with pytest.raises(ApplicationError) as refused:
        bill_line_update(actor=cashier, bill=bill, line=line, quantity=3)
    assert refused.value.code == "sales.bill_not_open"
    assert sales_state() == state
