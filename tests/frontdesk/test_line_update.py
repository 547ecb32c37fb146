"""The checkout screen's line editor changes a line in place (``bill_line_update``): it keeps its id and place,
and a manual price a manager approved stays approved when only the quantity changes (S-20)."""

from __future__ import annotations

from meiye.audit.models import AuditLog
from meiye.sales.models import Bill, BillLine
from tests.frontdesk.sales_fixtures import *  # noqa: F403
from tests.frontdesk.sales_fixtures import SERUM_BARCODE, field_errors, sales_state

HTMX = {"HX-Request": "true"}


def _open_with_two_lines(client, vip, catalogue) -> Bill:
    assert client.post("/checkout/open/", {"member": vip.pk}).status_code == 302
    bill = Bill.objects.get()
    client.post(f"/checkout/{bill.pk}/lines/", {"item": catalogue["facial"].pk})
    client.post(f"/checkout/{bill.pk}/lines/", {"barcode": SERUM_BARCODE})
    return bill


def _edit(client, bill, line, **fields):
    data = {f"l{line.pk}-{name}": value for name, value in fields.items()}
    return client.post(f"/checkout/{bill.pk}/lines/{line.pk}/", data, headers=HTMX)


def test_a_quantity_change_keeps_the_line_and_its_place(receptionist, vip, catalogue, client_for):
    client = client_for(receptionist)
    bill = _open_with_two_lines(client, vip, catalogue)
    first, second = BillLine.objects.filter(bill=bill).order_by("pk")

    response = _edit(client, bill, first, quantity="3")

    assert response.status_code == 200
    assert list(BillLine.objects.filter(bill=bill).order_by("pk").values_list("pk", "quantity", "line_total_fen")) == [
        (first.pk, 3, 180_000),
        (second.pk, 1, 25_000),
    ]
    assert Bill.objects.get(pk=bill.pk).payable_total_fen == 205_000
    content = response.content.decode()
    # the first row of the table is still the facial, and its editor is closed again
    assert content.index(f'data-line="{first.pk}"') < content.index(f'data-line="{second.pk}"')
    assert f'class="line-edit-row collapsed" id="edit-{first.pk}"' in content
    assert AuditLog.objects.filter(action="sales.line_update", object_id=str(bill.pk)).count() == 1


def test_S20_approved_price_survives_a_quantity_change_without_the_pin(
    receptionist, manager, manager_pin, vip, catalogue, client_for
):
    client = client_for(receptionist)
    bill = _open_with_two_lines(client, vip, catalogue)
    line = BillLine.objects.filter(bill=bill).order_by("pk").first()
    approved = _edit(
        client, bill, line, quantity="1", unit_price="480.00", approver=manager.pk, approval_pin=manager_pin
    )
    assert approved.status_code == 200

    # the editor sends the line back as shown (price and approver filled in, PIN empty) with a new quantity
    response = _edit(client, bill, line, quantity="2", unit_price="480.00", approver=manager.pk, approval_pin="")

    assert response.status_code == 200
    changed = BillLine.objects.get(pk=line.pk)
    assert (changed.quantity, changed.unit_price_fen, changed.line_total_fen, changed.approved_by_id) == (
        2,
        48_000,
        96_000,
        manager.pk,
    )
    assert AuditLog.objects.filter(action="sales.price_override", object_id=str(bill.pk)).count() == 1


def test_S20_a_lower_price_than_approved_asks_for_the_pin_beside_the_price(
    receptionist, manager, manager_pin, vip, catalogue, client_for
):
    client = client_for(receptionist)
    bill = _open_with_two_lines(client, vip, catalogue)
    line = BillLine.objects.filter(bill=bill).order_by("pk").first()
    _edit(client, bill, line, quantity="1", unit_price="480.00", approver=manager.pk, approval_pin=manager_pin)
    before = sales_state()

    response = _edit(client, bill, line, quantity="2", unit_price="450.00", approver=manager.pk, approval_pin="")

    assert response.status_code == 400
    assert field_errors(response.content.decode(), f"l{line.pk}-unit_price") == [
        "单价：低于会员价的 95%（¥570.00），审批密码不正确。"
    ]
    assert sales_state() == before


def test_an_empty_price_and_staff_take_them_off(receptionist, manager, vip, catalogue, client_for):
    client = client_for(receptionist)
    bill = _open_with_two_lines(client, vip, catalogue)
    line = BillLine.objects.filter(bill=bill).order_by("pk").first()
    _edit(client, bill, line, quantity="1", unit_price="570.00", performed_by=manager.pk)

    response = _edit(client, bill, line, quantity="1", unit_price="", performed_by="")

    assert response.status_code == 200
    changed = BillLine.objects.get(pk=line.pk)
    assert (changed.unit_price_fen, changed.performed_by_id, changed.approved_by_id) == (60_000, None, None)
