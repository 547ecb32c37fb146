"""The checkout screen (收银台): member lookup, opening a bill, adding and changing lines, the manual price
with a manager's approval (S-20), split tenders, idempotent completion, voiding, store scoping."""

from __future__ import annotations

import re
import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from meiye.audit.models import AuditLog
from meiye.ledger.models import Journal
from meiye.sales.models import Bill, BillLine, BillStatus, Tender
from meiye.sales.services import bill_add_line, bill_open
from tests.frontdesk.sales_fixtures import *  # noqa: F403
from tests.frontdesk.sales_fixtures import SERUM_BARCODE, balances, field_errors, sales_state

HTMX = {"HX-Request": "true"}


def _open(client, member=None) -> Bill:
    data = {"member": member.pk} if member is not None else {"walk_in": "1"}
    response = client.post("/checkout/open/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    bill = Bill.objects.order_by("-pk").first()
    assert response["Location"] == f"/checkout/{bill.pk}/"
    return bill


def _key(client, bill) -> str:
    page = client.get(f"/checkout/{bill.pk}/").content.decode()
    match = re.search(r'name="idempotency_key" value="([^"]+)"', page)
    assert match is not None
    return match.group(1)


def _add(client, bill, item, **headers) -> object:
    return client.post(f"/checkout/{bill.pk}/lines/", {"item": item.pk}, headers=headers)


# --- Start: find the member, open a bill ---------------------------------------------------------------------------


def test_start_page_finds_members_as_you_type(receptionist, vip, client_for):
    client = client_for(receptionist)

    page = client.get("/checkout/")
    fragment = client.get("/checkout/", {"q": "13812345678"}, headers=HTMX)

    assert page.status_code == 200
    content = page.content.decode()
    assert "散客开单" in content and 'data-hotkey="F2"' in content
    assert fragment.status_code == 200
    text = fragment.content.decode()
    assert "林小姐" in text and vip.member_no in text and "138****5678" in text
    assert "13812345678" not in text


def test_enter_on_a_full_phone_opens_her_bill(receptionist, vip, client_for, store1):
    client = client_for(receptionist)

    response = client.post("/checkout/open/", {"q": "13812345678"})

    bill = Bill.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/checkout/{bill.pk}/"
    assert (bill.member_id, bill.store_id, bill.status, bill.number) == (vip.pk, store1.pk, "open", "S1-000001")
    # the completion key was made with the bill and is the one the screen renders
    assert client.session["meiye_checkout_keys"] == {str(bill.pk): _key(client, bill)}


@pytest.mark.parametrize(
    ("language", "message"),
    [
        (None, "没有找到“13999999999”对应的会员。可以按散客开单。"),
        ("en", "No member found for “13999999999”. You can open a walk-in bill."),
    ],
)
def test_unknown_phone_is_shown_beside_the_lookup_and_opens_nothing(receptionist, vip, client_for, language, message):
    client = client_for(receptionist, language=language)

    response = client.post("/checkout/open/", {"q": "13999999999"})

    assert response.status_code == 400
    assert field_errors(response.content.decode(), "q") == [message]
    assert Bill.objects.count() == 0


def test_walk_in_bill_and_empty_lookup(receptionist, client_for):
    client = client_for(receptionist)

    refused = client.post("/checkout/open/", {"q": ""})
    bill = _open(client)

    assert refused.status_code == 400
    assert field_errors(refused.content.decode(), "q") == ["请输入手机号或会员号，或按散客开单。"]
    assert bill.member_id is None
    page = client.get(f"/checkout/{bill.pk}/").content.decode()
    assert "散客不能使用储值或积分" in page
    assert 'name="stored_value_amount"' not in page


def test_checkout_needs_the_checkout_permission(beautician, client_for):
    client = client_for(beautician)
    assert client.get("/checkout/").status_code == 403
    assert client.post("/checkout/open/", {"walk_in": "1"}).status_code == 403


# --- Lines --------------------------------------------------------------------------------------------------------------


def test_screen_shows_items_member_balances_and_the_keys(receptionist, vip, catalogue, client_for):
    client = client_for(receptionist)
    bill = _open(client, vip)

    content = client.get(f"/checkout/{bill.pk}/").content.decode()

    assert "基础护理" in content and "精华液" in content and "¥600.00" in content
    assert re.search(r'data-testid="principal">¥1,000.00<', content)
    assert re.search(r'data-testid="bonus">¥200.00<', content)
    assert re.search(r'data-testid="points">12000<', content)
    assert 'data-hotkey="F9"' in content and "按 F9 结账；在付款栏内按 Enter 也会结账" in content


def test_screen_in_english(receptionist, vip, catalogue, client_for):
    client = client_for(receptionist, language="en")
    bill = _open(client, vip)

    content = client.get(f"/checkout/{bill.pk}/").content.decode()

    for text in ("Checkout", "Stored value (principal)", "Payable", "Still due", "Press F9 to pay"):
        assert text in content
    assert "结账" not in content and "应付" not in content


def test_search_as_you_type_and_add_by_search_and_barcode(receptionist, vip, catalogue, client_for):
    client = client_for(receptionist)
    bill = _open(client, vip)

    found = client.get(f"/checkout/{bill.pk}/items/", {"q": "精华"}, headers=HTMX)
    added = _add(client, bill, catalogue["facial"], **HTMX)
    scanned = client.post(f"/checkout/{bill.pk}/lines/", {"barcode": SERUM_BARCODE}, headers=HTMX)

    assert found.status_code == 200
    assert "精华液" in found.content.decode() and "基础护理" not in found.content.decode()
    assert added.status_code == 200 and scanned.status_code == 200
    fragment = scanned.content.decode()
    assert fragment.startswith('<section class="card co-lines" id="co-lines"')
    assert 'id="co-pay" aria-labelledby="h-pay" hx-swap-oob="true"' in fragment
    assert "基础护理" in fragment and "精华液" in fragment
    assert re.search(r'data-testid="payable">¥850.00<', fragment)
    assert list(BillLine.objects.filter(bill=bill).values_list("name", "quantity", "unit_price_fen")) == [
        ("基础护理", 1, 60_000),
        ("精华液", 1, 25_000),
    ]


@pytest.mark.parametrize(
    ("language", "message"),
    [
        (None, "找不到条码为 0000 的产品，或您无权查看。"),
        ("en", "Product with barcode 0000 not found, or not visible to you."),
    ],
)
def test_unknown_barcode_is_shown_beside_the_scanner(receptionist, vip, catalogue, client_for, language, message):
    client = client_for(receptionist, language=language)
    bill = _open(client, vip)
    before = sales_state()

    htmx = client.post(f"/checkout/{bill.pk}/lines/", {"barcode": "0000"}, headers=HTMX)
    plain = client.post(f"/checkout/{bill.pk}/lines/", {"barcode": "0000"})

    assert htmx.status_code == 400
    assert htmx["HX-Retarget"] == "#add-line-errors"
    assert message in htmx.content.decode()
    assert plain.status_code == 400
    assert message in plain.content.decode()
    assert sales_state() == before


def test_change_quantity_performer_and_seller(receptionist, manager, vip, catalogue, client_for):
    client = client_for(receptionist)
    bill = _open(client, vip)
    _add(client, bill, catalogue["facial"])
    line = BillLine.objects.get(bill=bill)

    response = client.post(
        f"/checkout/{bill.pk}/lines/{line.pk}/",
        {f"l{line.pk}-quantity": "2", f"l{line.pk}-performed_by": manager.pk, f"l{line.pk}-sold_by": receptionist.pk},
        headers=HTMX,
    )

    assert response.status_code == 200
    changed = BillLine.objects.get(bill=bill)
    assert (changed.quantity, changed.line_total_fen, changed.performed_by_id, changed.sold_by_id) == (
        2,
        120_000,
        manager.pk,
        receptionist.pk,
    )
    assert Bill.objects.get(pk=bill.pk).payable_total_fen == 120_000


def test_remove_line(receptionist, vip, catalogue, client_for):
    client = client_for(receptionist)
    bill = _open(client, vip)
    _add(client, bill, catalogue["facial"])
    line = BillLine.objects.get(bill=bill)

    response = client.post(f"/checkout/{bill.pk}/lines/{line.pk}/remove/")

    assert response.status_code == 302
    assert not BillLine.objects.filter(bill=bill).exists()
    assert Bill.objects.get(pk=bill.pk).payable_total_fen == 0


# --- S-20: the manual price and the manager's approval ----------------------------------------------------------------------


def _price(client, bill, line, price, **extra):
    data = {f"l{line.pk}-quantity": "1", f"l{line.pk}-unit_price": price}
    data.update({f"l{line.pk}-{k}": v for k, v in extra.items()})
    return client.post(f"/checkout/{bill.pk}/lines/{line.pk}/", data, headers=HTMX)


def test_S20_cashier_alone_may_go_down_to_95_percent(receptionist, vip, catalogue, client_for):
    client = client_for(receptionist)
    bill = _open(client, vip)
    _add(client, bill, catalogue["facial"])
    line = BillLine.objects.get(bill=bill)

    response = _price(client, bill, line, "570.00")

    assert response.status_code == 200
    changed = BillLine.objects.get(bill=bill)
    assert (changed.unit_price_fen, changed.approved_by_id) == (57_000, None)
    assert "手工改价" in response.content.decode()


@pytest.mark.parametrize(
    ("language", "message"),
    [
        (None, "单价：低于会员价的 95%（¥570.00），需要店长审批。"),
        ("en", "unit_price: below 95% of the member price (¥570.00); a store manager must approve it."),
    ],
)
def test_S20_below_the_floor_asks_for_a_manager_beside_the_price(
    receptionist, vip, catalogue, client_for, language, message
):
    client = client_for(receptionist, language=language)
    bill = _open(client, vip)
    _add(client, bill, catalogue["facial"])
    line = BillLine.objects.get(bill=bill)
    before = sales_state()

    response = _price(client, bill, line, "480.00")

    assert response.status_code == 400
    content = response.content.decode()
    assert field_errors(content, f"l{line.pk}-unit_price") == [message]
    # the approval fields are shown, the editor stays open
    assert 'class="approval needed"' in content
    assert f'id="edit-{line.pk}"' in content and f'class="line-edit-row" id="edit-{line.pk}"' in content
    assert sales_state() == before
    assert BillLine.objects.get(pk=line.pk).unit_price_fen == 60_000


def test_S20_wrong_pin_is_refused_and_writes_nothing(receptionist, manager, manager_pin, vip, catalogue, client_for):
    client = client_for(receptionist)
    bill = _open(client, vip)
    _add(client, bill, catalogue["facial"])
    line = BillLine.objects.get(bill=bill)
    before = sales_state()

    response = _price(client, bill, line, "480.00", approver=manager.pk, approval_pin="0000")

    assert response.status_code == 400
    assert field_errors(response.content.decode(), f"l{line.pk}-unit_price") == [
        "单价：低于会员价的 95%（¥570.00），审批密码不正确。"
    ]
    assert sales_state() == before


def test_S20_manager_and_pin_approve_80_percent(receptionist, manager, manager_pin, vip, catalogue, client_for):
    client = client_for(receptionist)
    bill = _open(client, vip)
    _add(client, bill, catalogue["facial"])
    line = BillLine.objects.get(bill=bill)

    response = _price(client, bill, line, "480.00", approver=manager.pk, approval_pin=manager_pin)

    assert response.status_code == 200
    changed = BillLine.objects.get(bill=bill)
    assert (changed.unit_price_fen, changed.approved_by_id) == (48_000, manager.pk)
    assert AuditLog.objects.filter(action="sales.price_override", object_id=str(bill.pk)).count() == 1
    assert f"{manager} 批准" in response.content.decode()


# --- Completing ------------------------------------------------------------------------------------------------------------


def _two_lines(client, bill, catalogue) -> None:
    _add(client, bill, catalogue["facial"])
    client.post(f"/checkout/{bill.pk}/lines/", {"barcode": SERUM_BARCODE})


def test_split_tender_stored_value_and_cash_with_change(receptionist, vip, catalogue, client_for):
    client = client_for(receptionist)
    bill = _open(client, vip)
    _two_lines(client, bill, catalogue)
    key = _key(client, bill)

    response = client.post(
        f"/checkout/{bill.pk}/complete/",
        {
            "idempotency_key": key,
            "stored_value_amount": "500.00",
            "cash_amount": "350",
            "cash_received": "400",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == f"/bills/{bill.pk}/receipt/?done=1"
    done = Bill.objects.get(pk=bill.pk)
    assert (done.status, done.payable_total_fen, done.idempotency_key) == (BillStatus.COMPLETED, 85_000, key)
    # 500.00 from stored value in proportion to 1,000.00 : 200.00 -> 416.67 principal + 83.33 bonus
    sv = Tender.objects.get(bill=bill, kind="stored_value")
    cash = Tender.objects.get(bill=bill, kind="cash")
    assert (sv.amount_fen, sv.principal_fen, sv.bonus_fen) == (50_000, 41_667, 8_333)
    assert (cash.amount_fen, cash.received_fen, cash.change_fen) == (35_000, 40_000, 5_000)
    # earning 766.67 (cash + principal) over the lines 600 : 250 -> 541.18 basic care (541) and 225.49 retail (450)
    assert done.points_earned == 991
    assert balances(vip) == {"principal": 58_333, "bonus": 11_667, "points": 12_991}
    assert "meiye_checkout_keys" not in client.session or str(bill.pk) not in client.session["meiye_checkout_keys"]

    receipt = client.get(response["Location"]).content.decode()
    assert "已结账" in receipt and re.search(r'data-testid="change">¥50.00<', receipt)


def test_double_submit_of_the_same_form_charges_once(receptionist, vip, catalogue, client_for):
    client = client_for(receptionist)
    bill = _open(client, vip)
    _two_lines(client, bill, catalogue)
    form = {"idempotency_key": _key(client, bill), "stored_value_amount": "850.00"}

    first = client.post(f"/checkout/{bill.pk}/complete/", form)
    journals = Journal.objects.count()
    second = client.post(f"/checkout/{bill.pk}/complete/", form)

    assert first.status_code == second.status_code == 302
    assert first["Location"] == f"/bills/{bill.pk}/receipt/?done=1"
    assert second["Location"].startswith(f"/bills/{bill.pk}/receipt/")
    assert Tender.objects.filter(bill=bill).count() == 1
    assert Journal.objects.count() == journals
    # 850.00 in proportion to 1,000.00 : 200.00 -> 708.33 + 141.67, once
    assert balances(vip)["principal"] == 100_000 - 70_833
    assert balances(vip)["bonus"] == 20_000 - 14_167


def test_a_second_form_with_other_tenders_after_completion_shows_the_receipt(receptionist, vip, catalogue, client_for):
    client = client_for(receptionist)
    bill = _open(client, vip)
    _two_lines(client, bill, catalogue)
    key = _key(client, bill)
    client.post(f"/checkout/{bill.pk}/complete/", {"idempotency_key": key, "cash_amount": "850.00"})
    after_first = sales_state()

    # a second tab with the same key and other tenders, then a reload of the screen
    other = client.post(f"/checkout/{bill.pk}/complete/", {"idempotency_key": key, "wechat_amount": "850.00"})
    reload = client.get(f"/checkout/{bill.pk}/")

    assert other.status_code == 302 and other["Location"] == f"/bills/{bill.pk}/receipt/"
    assert reload.status_code == 302 and reload["Location"] == f"/bills/{bill.pk}/receipt/"
    assert sales_state() == after_first


@pytest.mark.parametrize(
    ("language", "message"),
    [
        (None, "付款合计 ¥800.00 与应付 ¥850.00 不符。"),
        ("en", "The tenders add up to ¥800.00, the bill's payable is ¥850.00."),
    ],
)
def test_tenders_that_do_not_add_up_are_refused_beside_the_tenders(
    receptionist, vip, catalogue, client_for, language, message
):
    client = client_for(receptionist, language=language)
    bill = _open(client, vip)
    _two_lines(client, bill, catalogue)
    key = _key(client, bill)
    before = sales_state()

    response = client.post(
        f"/checkout/{bill.pk}/complete/", {"idempotency_key": key, "stored_value_amount": "500", "cash_amount": "300"}
    )

    assert response.status_code == 400
    content = response.content.decode()
    assert field_errors(content, "tenders") == [message]
    # what was typed is kept, with the same key
    assert 'name="stored_value_amount" value="500"' in content
    assert f'name="idempotency_key" value="{key}"' in content
    assert sales_state() == before
    assert balances(vip) == {"principal": 100_000, "bonus": 20_000, "points": 12_000}


@pytest.mark.parametrize(
    ("language", "field", "message"),
    [
        (None, "cash_received", "实收 ¥300.00 少于应收 ¥850.00。"),
        ("en", "cash_received", "received ¥300.00 is less than the amount ¥850.00."),
    ],
)
def test_cash_short_is_shown_beside_the_cash(receptionist, vip, catalogue, client_for, language, field, message):
    client = client_for(receptionist, language=language)
    bill = _open(client, vip)
    _two_lines(client, bill, catalogue)
    before = sales_state()

    response = client.post(
        f"/checkout/{bill.pk}/complete/",
        {"idempotency_key": _key(client, bill), "cash_amount": "850", "cash_received": "300"},
    )

    assert response.status_code == 400
    assert field_errors(response.content.decode(), "cash_amount") == [message]
    assert sales_state() == before
    del field


def test_malformed_amount_and_walk_in_stored_value_are_refused(receptionist, catalogue, client_for):
    client = client_for(receptionist)
    bill = _open(client)
    _add(client, bill, catalogue["facial"])
    key = _key(client, bill)
    before = sales_state()

    malformed = client.post(f"/checkout/{bill.pk}/complete/", {"idempotency_key": key, "cash_amount": "6OO"})
    walk_in_sv = client.post(f"/checkout/{bill.pk}/complete/", {"idempotency_key": key, "stored_value_amount": "600"})

    assert malformed.status_code == 400
    assert field_errors(malformed.content.decode(), "cash_amount") == [
        "金额格式不正确，应为最多两位小数的元，如 12.30。"
    ]
    assert walk_in_sv.status_code == 400
    assert "散客不能用储值或积分付款" in walk_in_sv.content.decode()
    assert sales_state() == before


def test_points_offset_with_stored_value(receptionist, vip, catalogue, client_for):
    client = client_for(receptionist)
    bill = _open(client, vip)
    _add(client, bill, catalogue["facial"])

    response = client.post(
        f"/checkout/{bill.pk}/complete/",
        {"idempotency_key": _key(client, bill), "points": "1000", "stored_value_amount": "590.00"},
    )

    assert response.status_code == 302
    points = Tender.objects.get(bill=bill, kind="points")
    assert (points.amount_fen, points.points_used) == (1_000, 1_000)
    # 590.00 = 491.67 principal + 98.33 bonus; earns floor(491.67) = 491 points
    assert balances(vip) == {"principal": 50_833, "bonus": 10_167, "points": 12_000 - 1_000 + 491}


# --- Void and scoping --------------------------------------------------------------------------------------------------------


def test_void_an_open_bill(receptionist, vip, catalogue, client_for):
    client = client_for(receptionist)
    bill = _open(client, vip)
    _add(client, bill, catalogue["facial"])

    response = client.post(f"/bills/{bill.pk}/void/", {"reason": "客人改约"})

    assert response.status_code == 302 and response["Location"] == "/checkout/"
    voided = Bill.objects.get(pk=bill.pk)
    assert (voided.status, voided.void_reason) == (BillStatus.VOIDED, "客人改约")
    assert client.get(f"/checkout/{bill.pk}/")["Location"] == f"/bills/{bill.pk}/"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/checkout/{pk}/"),
        ("get", "/checkout/{pk}/items/"),
        ("post", "/checkout/{pk}/lines/"),
        ("post", "/checkout/{pk}/complete/"),
        ("post", "/bills/{pk}/void/"),
    ],
)
def test_open_bill_of_another_store_is_404(
    receptionist, receptionist2, store2, catalogue, client_for, actor_for, method, path
):
    other = bill_open(actor=actor_for(receptionist2, store2))
    bill_add_line(actor=actor_for(receptionist2, store2), bill=other, item=catalogue["facial"])
    before = sales_state()

    response = getattr(client_for(receptionist), method)(path.format(pk=other.pk))

    assert response.status_code == 404
    assert sales_state() == before


def test_open_bill_by_member_of_another_store_is_404(receptionist, store2, make_member, client_for):
    other = make_member(store2, phone="13700000009", name="徐汇会员")
    response = client_for(receptionist).post("/checkout/open/", {"member": other.pk})
    assert response.status_code == 404
    assert Bill.objects.count() == 0


def test_screen_queries_do_not_grow_with_lines(receptionist, vip, catalogue, client_for):
    client = client_for(receptionist)
    bill = _open(client, vip)
    _add(client, bill, catalogue["facial"])
    client.get(f"/checkout/{bill.pk}/")  # warm the session
    with CaptureQueriesContext(connection) as one:
        client.get(f"/checkout/{bill.pk}/")
    _add(client, bill, catalogue["lifting"])
    client.post(f"/checkout/{bill.pk}/lines/", {"barcode": SERUM_BARCODE})
    with CaptureQueriesContext(connection) as three:
        client.get(f"/checkout/{bill.pk}/")

    assert len(three) == len(one)


@pytest.mark.django_db(transaction=True)
def test_two_clicks_at_the_same_moment_charge_once(receptionist, vip, catalogue, client_for):
    # given: the same form sent from two connections at the same moment (a double click that reached two
    # server threads)
    client = client_for(receptionist)
    bill = _open(client, vip)
    _two_lines(client, bill, catalogue)
    form = {"idempotency_key": _key(client, bill), "stored_value_amount": "850.00"}
    clients = [client_for(receptionist), client_for(receptionist)]
    barrier = threading.Barrier(len(clients))
    locations: list[str] = []

    def click(c) -> None:
        try:
            barrier.wait()
            response = c.post(f"/checkout/{bill.pk}/complete/", form)
            locations.append(response["Location"] if response.status_code == 302 else str(response.status_code))
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=click, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # then: both are shown the receipt; the wallet was charged once
    assert sorted(loc.split("?")[0] for loc in locations) == [f"/bills/{bill.pk}/receipt/"] * 2
    assert Tender.objects.filter(bill=bill).count() == 1
    assert balances(vip)["principal"] + balances(vip)["bonus"] == 120_000 - 85_000


@pytest.mark.parametrize(
    ("language", "message"),
    [(None, "这张表单已失效，请刷新页面后重试。"), ("en", "This form has expired; reload the page and try again.")],
)
def test_a_form_without_its_key_is_refused_at_the_top(receptionist, vip, catalogue, client_for, language, message):
    client = client_for(receptionist, language=language)
    bill = _open(client, vip)
    _add(client, bill, catalogue["facial"])
    before = sales_state()

    response = client.post(f"/checkout/{bill.pk}/complete/", {"cash_amount": "600"})

    assert response.status_code == 400
    assert field_errors(response.content.decode(), "tenders") == [message]
    assert sales_state() == before
