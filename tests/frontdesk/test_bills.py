"""Bills: the day's list and its filters, a bill's page, refunds (whole bill or lines, to the original tenders or
to stored value; only with sales.refund), receipts on 80 mm and A4, the daily close, store scoping."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from meiye.sales.models import Bill, BillLine, BillStatus, Refund
from meiye.sales.services import bill_open
from tests.frontdesk.sales_fixtures import *  # noqa: F403
from tests.frontdesk.sales_fixtures import balances, field_errors, sales_state


def _refund_page(client, bill) -> tuple[str, str]:
    response = client.get(f"/bills/{bill.pk}/refund/")
    assert response.status_code == 200
    content = response.content.decode()
    key = re.search(r'name="idempotency_key" value="([^"]+)"', content)
    assert key is not None
    return content, key.group(1)


# --- List and detail ---------------------------------------------------------------------------------------------------


def test_bill_list_shows_today_and_filters_by_status_and_date(
    receptionist, completed_bill, vip, client_for, actor_for, store1
):
    client = client_for(receptionist)
    open_bill = bill_open(actor=actor_for(receptionist, store1), member=None)

    today = client.get("/bills/")
    completed = client.get("/bills/", {"status": "completed"})
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    earlier = client.get("/bills/", {"date_from": yesterday, "date_to": yesterday})

    assert today.status_code == 200
    content = today.content.decode()
    assert completed_bill.number in content and open_bill.number in content
    assert "林小姐" in content and "¥850.00" in content
    assert f'value="{timezone.localdate().isoformat()}"' in content
    assert completed_bill.number in completed.content.decode()
    assert open_bill.number not in completed.content.decode()
    assert completed_bill.number not in earlier.content.decode()
    assert "这段时间没有消费单。" in earlier.content.decode()


@pytest.mark.parametrize(
    ("language", "message"),
    [(None, "结束日期不能早于开始日期。"), ("en", "The end date cannot be before the start date.")],
)
def test_bill_list_date_range_error_beside_the_field(receptionist, client_for, language, message):
    response = client_for(receptionist, language=language).get(
        "/bills/", {"date_from": "2026-03-02", "date_to": "2026-03-01"}
    )
    assert response.status_code == 400
    assert field_errors(response.content.decode(), "date_to") == [message]


def test_bill_detail_shows_lines_tenders_and_refund_only_with_the_permission(
    receptionist, manager, completed_bill, client_for
):
    as_receptionist = client_for(receptionist).get(f"/bills/{completed_bill.pk}/").content.decode()
    as_manager = client_for(manager).get(f"/bills/{completed_bill.pk}/").content.decode()

    for content in (as_receptionist, as_manager):
        assert "基础护理" in content and "精华液" in content
        assert "储值" in content and "¥416.67" in content and "¥83.33" in content
        assert "实收 ¥400.00，找零 ¥50.00" in content
    assert f'href="/bills/{completed_bill.pk}/refund/"' not in as_receptionist
    assert f'href="/bills/{completed_bill.pk}/refund/"' in as_manager


def test_refund_needs_the_refund_permission(receptionist, completed_bill, client_for):
    client = client_for(receptionist)
    before = sales_state()
    assert client.get(f"/bills/{completed_bill.pk}/refund/").status_code == 403
    response = client.post(
        f"/bills/{completed_bill.pk}/refund/",
        {"mode": "full", "destination": "original", "reason": "客诉", "idempotency_key": "k1"},
    )
    assert response.status_code == 403
    assert sales_state() == before


# --- Refunds -------------------------------------------------------------------------------------------------------------


def test_refund_one_line_to_the_original_tenders(manager, completed_bill, vip, client_for):
    client = client_for(manager)
    _content, key = _refund_page(client, completed_bill)
    serum = BillLine.objects.get(bill=completed_bill, name="精华液")
    before = balances(vip)

    response = client.post(
        f"/bills/{completed_bill.pk}/refund/",
        {
            "mode": "lines",
            f"qty_{serum.pk}": "1",
            "destination": "original",
            "reason": "过敏退货",
            "idempotency_key": key,
        },
    )

    assert response.status_code == 302 and response["Location"] == f"/bills/{completed_bill.pk}/"
    refund = Refund.objects.get()
    assert (refund.amount_fen, refund.is_full, refund.reason, refund.created_by_id) == (
        25_000,
        False,
        "过敏退货",
        manager.pk,
    )
    assert BillLine.objects.get(pk=serum.pk).refunded_quantity == 1
    # 250.00 over the tenders 500 : 350 -> 147.06 stored value (122.55 principal + 24.51 bonus) and 102.94 cash;
    # the serum's 450 points go back
    after = balances(vip)
    assert after["principal"] - before["principal"] == 12_255
    assert after["bonus"] - before["bonus"] == 2_451
    assert before["points"] - after["points"] == 450
    page = client.get(response["Location"]).content.decode()
    assert "已退款 ¥250.00（消费单 S1-000001）。" in page
    assert "过敏退货" in page and "精华液 × 1" in page


def test_full_refund_to_stored_value(manager, completed_bill, vip, client_for):
    client = client_for(manager)
    _content, key = _refund_page(client, completed_bill)

    response = client.post(
        f"/bills/{completed_bill.pk}/refund/",
        {"mode": "full", "destination": "stored_value", "reason": "整单退", "idempotency_key": key},
    )

    assert response.status_code == 302
    refund = Refund.objects.get()
    assert (refund.amount_fen, refund.is_full, refund.destination) == (85_000, True, "stored_value")
    # the stored value comes back as charged; the cash goes into her principal; the earned points go
    assert balances(vip) == {"principal": 100_000 + 35_000, "bonus": 20_000, "points": 12_000}
    # nothing left to refund: the button is gone
    assert f'href="/bills/{completed_bill.pk}/refund/"' not in client.get(response["Location"]).content.decode()


def test_double_submit_of_the_refund_form_refunds_once(manager, completed_bill, vip, client_for):
    client = client_for(manager)
    _content, key = _refund_page(client, completed_bill)
    form = {"mode": "full", "destination": "original", "reason": "重复点击", "idempotency_key": key}

    first = client.post(f"/bills/{completed_bill.pk}/refund/", form)
    state = sales_state()
    second = client.post(f"/bills/{completed_bill.pk}/refund/", form)

    assert first.status_code == second.status_code == 302
    assert Refund.objects.count() == 1
    assert sales_state() == state


@pytest.mark.parametrize(
    ("language", "field", "data", "message"),
    [
        (None, "reason", {"mode": "full", "reason": ""}, "退款原因：必填。"),
        ("en", "reason", {"mode": "full", "reason": ""}, "reason: this field is required."),
        (None, "lines", {"mode": "lines", "reason": "部分退"}, "请选择要退款的项目。"),
        ("en", "lines", {"mode": "lines", "reason": "部分退"}, "Choose the lines to refund."),
    ],
)
def test_refund_errors_are_shown_beside_their_field_and_write_nothing(
    manager, completed_bill, client_for, language, field, data, message
):
    client = client_for(manager, language=language)
    _content, key = _refund_page(client, completed_bill)
    before = sales_state()

    response = client.post(
        f"/bills/{completed_bill.pk}/refund/", {"destination": "original", "idempotency_key": key, **data}
    )

    assert response.status_code == 400
    assert field_errors(response.content.decode(), field) == [message]
    assert sales_state() == before


def test_refund_more_than_is_left_is_refused_beside_the_lines(manager, completed_bill, client_for):
    client = client_for(manager)
    _content, key = _refund_page(client, completed_bill)
    facial = BillLine.objects.get(bill=completed_bill, name="基础护理")
    before = sales_state()

    response = client.post(
        f"/bills/{completed_bill.pk}/refund/",
        {"mode": "lines", f"qty_{facial.pk}": "2", "destination": "original", "reason": "多退", "idempotency_key": key},
    )

    assert response.status_code == 400
    assert field_errors(response.content.decode(), "lines") == ["基础护理：最多还能退 1 件，申请退 2 件。"]
    assert sales_state() == before


def test_open_bill_cannot_be_refunded(manager, vip, client_for, actor_for, store1):
    bill = bill_open(actor=actor_for(manager, store1), member=vip)
    client = client_for(manager)
    _content, key = _refund_page(client, bill)
    before = sales_state()

    response = client.post(
        f"/bills/{bill.pk}/refund/", {"mode": "full", "destination": "original", "reason": "x", "idempotency_key": key}
    )

    assert response.status_code == 400
    assert "未结账，不能退款" in response.content.decode()
    assert sales_state() == before


# --- Receipt -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("paper", ["80mm", "a4"])
def test_receipt_on_80mm_and_a4(receptionist, completed_bill, client_for, paper):
    response = client_for(receptionist).get(f"/bills/{completed_bill.pk}/receipt/", {"format": paper})

    assert response.status_code == 200
    content = response.content.decode()
    assert f'class="receipt receipt-{paper}"' in content
    for text in ("静安店", "S1-000001", "林小姐", "基础护理", "精华液", "¥850.00", "¥416.67 / ¥83.33", "+991"):
        assert text in content
    assert re.search(r'data-testid="change">¥50.00<', content)
    assert re.search(r'data-testid="principal-after">¥583.33<', content)
    assert re.search(r'data-testid="bonus-after">¥116.67<', content)
    assert re.search(r'data-testid="points-after">12991<', content)
    assert "data-print" in content


def test_receipt_shows_discounts_with_their_reason(
    receptionist, manager, manager_pin, vip, catalogue, client_for, actor_for, store1
):
    from meiye.core.money import Money
    from meiye.sales.services import TenderInput, bill_add_line, bill_complete

    cashier = actor_for(receptionist, store1)
    bill = bill_open(actor=cashier, member=vip)
    bill_add_line(
        actor=cashier,
        bill=bill,
        item=catalogue["facial"],
        unit_price=Money.parse("480.00"),
        approver=manager,
        approval_pin=manager_pin,
    )
    bill_complete(
        actor=cashier,
        bill=bill,
        tenders=[TenderInput(kind="cash", amount=Money.parse("480.00"))],
        idempotency_key="discount-receipt",
    )

    zh = client_for(receptionist).get(f"/bills/{bill.pk}/receipt/").content.decode()
    en = client_for(receptionist, language="en").get(f"/bills/{bill.pk}/receipt/").content.decode()

    assert "手工改价" in zh and "¥480.00" in zh and f"{manager} 批准" in zh and "原价" in zh
    assert "Manual price" in en and f"approved by {manager}" in en


def test_unknown_receipt_format_falls_back_to_80mm(receptionist, completed_bill, client_for):
    content = client_for(receptionist).get(f"/bills/{completed_bill.pk}/receipt/?format=letter").content.decode()
    assert 'class="receipt receipt-80mm"' in content


# --- Daily close -------------------------------------------------------------------------------------------------------


def test_daily_close_totals_by_tender_and_category(manager, completed_bill, client_for):
    response = client_for(manager).get("/bills/close/")

    assert response.status_code == 200
    content = response.content.decode()
    assert re.search(r'data-testid="sales-total">¥850.00<', content)
    # cash 350.00 of the bill; the fixture's recharge was WeChat
    assert re.search(r'data-testid="cash-expected">¥350.00<', content)
    assert "基础护理" in content and "零售产品" in content and "¥600.00" in content and "¥250.00" in content
    assert "储值" in content and "¥500.00" in content


def test_daily_close_in_english_and_for_another_day(manager, completed_bill, client_for):
    client = client_for(manager, language="en")
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()

    content = client.get("/bills/close/", {"day": yesterday}).content.decode()

    assert "Daily close" in content
    assert re.search(r'data-testid="sales-total">¥0.00<', content)


def test_daily_close_needs_the_permission(receptionist, client_for):
    assert client_for(receptionist).get("/bills/close/").status_code == 403


# --- Store scoping ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "method", "path"),
    [
        ("receptionist", "get", "/bills/{pk}/"),
        ("receptionist", "get", "/bills/{pk}/receipt/"),
        ("receptionist", "get", "/bills/{pk}/receipt/?format=a4"),
        ("receptionist", "post", "/bills/{pk}/void/"),
        ("manager", "get", "/bills/{pk}/refund/"),
        ("manager", "post", "/bills/{pk}/refund/"),
    ],
)
def test_bill_of_another_store_is_404(request, store2_bill, client_for, who, method, path):
    staff = request.getfixturevalue(who)
    before = sales_state()

    response = getattr(client_for(staff), method)(
        path.format(pk=store2_bill.pk),
        {"mode": "full", "destination": "original", "reason": "x", "idempotency_key": "scoping"}
        if method == "post"
        else None,
    )

    assert response.status_code == 404
    assert "徐汇会员" not in response.content.decode()
    assert sales_state() == before


def test_bill_list_shows_only_the_current_store(receptionist, completed_bill, store2_bill, client_for):
    content = client_for(receptionist).get("/bills/").content.decode()
    assert completed_bill.number in content
    assert store2_bill.number not in content
    assert Bill.objects.filter(status=BillStatus.COMPLETED).count() == 2


def test_voiding_a_completed_bill_is_refused_and_writes_nothing(receptionist, completed_bill, client_for):
    client = client_for(receptionist)
    before = sales_state()

    response = client.post(f"/bills/{completed_bill.pk}/void/", {"reason": "误操作"})

    assert response.status_code == 400
    assert field_errors(response.content.decode(), "void")[0] == (
        f"消费单 {completed_bill.number} 状态为「已结账」，不能再修改。"
    )
    assert sales_state() == before
    assert Bill.objects.get(pk=completed_bill.pk).status == BillStatus.COMPLETED
