"""Bills through the API: open, lines, checkout, one-shot checkout, refunds, void, receipt, daily close.

Exact amounts of the reference configuration (basic care 1 / anti-ageing 3 / retail 2 points per 元).
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from meiye.core.idempotency import canonical_hash
from meiye.core.models import IdempotencyRecord
from meiye.core.money import Money
from meiye.sales.models import Bill, BillStatus, Refund, Tender
from meiye.sales.services import LineInput, TenderInput, bill_checkout, bill_open
from tests.sales.support import balances, sales_state

BILLS = "/api/v1/bills/"
ONE_SHOT = "/api/v1/bills/checkout/"
PROBLEM = "application/problem+json"


def _post(client, url, body, key=None, **headers):
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post(url, body, format="json", **headers)


def _three_lines(care, lifting, serum):
    return [{"item_id": care.pk}, {"item_id": lifting.pk}, {"item_id": serum.pk}]


def _list_step(price: str) -> dict:
    return {
        "step": "list_price",
        "unit_price": price,
        "unit_price_fen": Money.parse(price).fen,
        "discount": None,
        "reason": "标价 List price",
    }


# --- one-shot checkout ------------------------------------------------------------------------------------------


def test_one_shot_checkout_of_three_lines_with_stored_value_and_wechat_earns_by_category(
    reception_api, shopper, top_up, care, lifting, serum, store1
):
    # given: principal 1,000.00, no bonus
    top_up(shopper, "1000.00")

    # when: 600.00 + 1,000.00 + 250.00 = 1,850.00 paid 1,000.00 from stored value and 850.00 by WeChat
    response = _post(
        reception_api,
        ONE_SHOT,
        {
            "member_id": shopper.pk,
            "lines": _three_lines(care, lifting, serum),
            "tenders": [
                {"kind": "stored_value", "amount": "1000.00"},
                {"kind": "wechat", "amount": "850.00", "external_ref": "wx-0001"},
            ],
        },
        key="co-1",
    )

    # then
    assert response.status_code == 201, response.json()
    bill = response.json()
    assert (bill["number"], bill["status"], bill["store"]["id"]) == ("S1-000001", "completed", store1.pk)
    assert bill["member"] == {"id": shopper.pk, "member_no": shopper.member_no, "name": "林小姐"}
    assert (bill["list_total"], bill["discount_total"], bill["payable_total"]) == ("1850.00", "0.00", "1850.00")
    assert bill["payable_total_fen"] == 185_000
    assert bill["earning_total"] == "1850.00"
    # principal and WeChat both earn: 600 × 1 + 1,000 × 3 + 250 × 2
    assert [(line["name"], line["earning"], line["points_earned"]) for line in bill["lines"]] == [
        ("基础护理", "600.00", 600),
        ("抗衰紧致", "1000.00", 3000),
        ("精华液", "250.00", 500),
    ]
    assert bill["points_earned"] == 4100
    assert [line["price_steps"] for line in bill["lines"]] == [
        [_list_step("600.00")],
        [_list_step("1000.00")],
        [_list_step("250.00")],
    ]
    assert [
        (t["kind"], t["amount"], t["principal"], t["bonus"], t["external_ref"], t["received"]) for t in bill["tenders"]
    ] == [
        ("stored_value", "1000.00", "1000.00", "0.00", "", None),
        ("wechat", "850.00", "0.00", "0.00", "wx-0001", None),
    ]
    assert bill["refunds"] == []
    assert balances(shopper) == {"principal": 0, "bonus": 0, "points": 4100, "growth": 185_000}
    wallet = reception_api.get(f"/api/v1/members/{shopper.pk}/wallet/").json()
    assert (wallet["principal"], wallet["bonus"], wallet["total"]) == ("0.00", "0.00", "0.00")
    points = reception_api.get(f"/api/v1/members/{shopper.pk}/points/").json()
    assert (points["points"], points["growth"]) == (4100, "1850.00")


def test_S05_only_real_money_earns_via_api(reception_api, s05_shopper, care, manager, api_manager_pin):
    # given: principal 1,000.00, bonus 200.00, 12,000 points; the 50.00-off coupon is a manager-approved
    # manual price of 550.00 until coupons exist

    # when: 1,000 points pay 10.00, stored value the remaining 540.00
    response = _post(
        reception_api,
        ONE_SHOT,
        {
            "member_id": s05_shopper.pk,
            "lines": [
                {
                    "item_id": care.pk,
                    "unit_price": "550.00",
                    "approver_id": manager.pk,
                    "approval_pin": api_manager_pin,
                }
            ],
            "tenders": [{"kind": "points", "points": 1000}, {"kind": "stored_value", "amount": "540.00"}],
        },
        key="s05",
    )

    # then: 540.00 = 450.00 principal + 90.00 bonus; only the principal earns: 450 points
    assert response.status_code == 201, response.json()
    bill = response.json()
    assert (bill["list_total"], bill["discount_total"], bill["payable_total"]) == ("600.00", "50.00", "550.00")
    line = bill["lines"][0]
    assert (line["unit_price"], line["earning"], line["points_earned"]) == ("550.00", "450.00", 450)
    assert line["approved_by"] == {"id": manager.pk, "display_name": str(manager)}
    assert [step["step"] for step in line["price_steps"]] == ["list_price", "manual_adjustment"]
    assert line["price_steps"][1]["unit_price"] == "550.00"
    assert line["price_steps"][1]["reason"].startswith("手工改价 Manual price")
    assert [(t["kind"], t["amount"], t["points_used"], t["principal"], t["bonus"]) for t in bill["tenders"]] == [
        ("points", "10.00", 1000, "0.00", "0.00"),
        ("stored_value", "540.00", 0, "450.00", "90.00"),
    ]
    wallet = reception_api.get(f"/api/v1/members/{s05_shopper.pk}/wallet/").json()
    assert (wallet["principal"], wallet["bonus"], wallet["total"]) == ("550.00", "110.00", "660.00")
    points = reception_api.get(f"/api/v1/members/{s05_shopper.pk}/points/").json()
    assert points == {"member_id": s05_shopper.pk, "points": 11_450, "growth": "450.00", "growth_fen": 45_000}
    # the approval PIN is not part of the stored idempotency fingerprint
    body_without_pin = {
        "member_id": s05_shopper.pk,
        "lines": [{"item_id": care.pk, "unit_price": "550.00", "approver_id": manager.pk}],
        "tenders": [{"kind": "points", "points": 1000}, {"kind": "stored_value", "amount": "540.00"}],
    }
    record = IdempotencyRecord.objects.get(key="s05")
    assert record.request_hash == canonical_hash(
        {
            "method": "POST",
            "path": ONE_SHOT,
            "body": body_without_pin,
            "staff": record_staff(reception_api),
            "store": "",
        }
    )


def record_staff(client) -> int:
    return client.get("/api/v1/me/").json()["id"]


def test_S20_a_manual_price_below_the_floor_needs_approval_and_writes_nothing(
    reception_api, shopper, care, manager, api_manager_pin
):
    bill = _post(reception_api, BILLS, {"member_id": shopper.pk}).json()
    lines_url = f"{BILLS}{bill['id']}/lines/"

    # 95% of 600.00 = 570.00 the receptionist may set alone
    alone = _post(reception_api, lines_url, {"item_id": care.pk, "unit_price": "570.00"})
    assert alone.status_code == 201
    assert alone.json()["lines"][0]["approved_by"] is None

    # 480.00 (80%) without approval: refused, nothing written
    before = sales_state()
    refused = _post(reception_api, lines_url, {"item_id": care.pk, "unit_price": "480.00"}, key="s20-1")
    assert refused.status_code == 400
    assert refused["Content-Type"] == PROBLEM
    assert refused.json()["code"] == "pricing.approval_required"
    assert refused.json()["field"] == "unit_price"
    assert refused.json()["extra"] == {"floor_fen": 57_000, "member_price_fen": 60_000}
    wrong_pin = _post(
        reception_api,
        lines_url,
        {"item_id": care.pk, "unit_price": "480.00", "approver_id": manager.pk, "approval_pin": "0000"},
        key="s20-1",
    )
    assert wrong_pin.json()["code"] == "pricing.approval_required"
    assert sales_state() == before
    assert IdempotencyRecord.objects.filter(key="s20-1").count() == 0

    # with the manager's PIN (same key: a failed attempt stored nothing)
    approved = _post(
        reception_api,
        lines_url,
        {"item_id": care.pk, "unit_price": "480.00", "approver_id": manager.pk, "approval_pin": api_manager_pin},
        key="s20-1",
    )
    assert approved.status_code == 201
    line = approved.json()["lines"][1]
    assert (line["unit_price"], line["approved_by"]["id"]) == ("480.00", manager.pk)
    assert approved.json()["payable_total"] == "1050.00"


# --- open bill, lines, checkout, void ---------------------------------------------------------------------------


def test_open_add_and_remove_lines_then_pay_cash_with_change(reception_api, shopper, care, serum):
    # open
    opened = _post(reception_api, BILLS, {"member_id": shopper.pk})
    assert opened.status_code == 201
    bill = opened.json()
    assert (bill["number"], bill["status"], bill["payable_total"], bill["lines"]) == ("S1-000001", "open", "0.00", [])
    url = f"{BILLS}{bill['id']}/"

    # add 基础护理 and 2 × 精华液, take 基础护理 off again
    after_care = _post(reception_api, url + "lines/", {"item_id": care.pk})
    after_serum = _post(reception_api, url + "lines/", {"item_id": serum.pk, "quantity": 2})
    care_line = after_care.json()["lines"][0]["id"]
    removed = reception_api.delete(f"{url}lines/{care_line}/")

    assert after_care.json()["payable_total"] == "600.00"
    assert after_serum.json()["payable_total"] == "1100.00"
    assert removed.status_code == 200
    assert removed.json()["payable_total"] == "500.00"
    assert [(li["name"], li["quantity"], li["line_total"]) for li in removed.json()["lines"]] == [
        ("精华液", 2, "500.00")
    ]

    # pay: without a key refused; with it, cash 600.00 handed over for 500.00
    tenders = {"tenders": [{"kind": "cash", "amount": "500.00", "received": "600.00"}]}
    missing = _post(reception_api, url + "checkout/", tenders)
    assert missing.status_code == 400
    assert missing.json()["code"] == "idempotency.key_required"
    assert Bill.objects.get(pk=bill["id"]).status == BillStatus.OPEN

    paid = _post(reception_api, url + "checkout/", tenders, key="pay-1")
    assert paid.status_code == 200, paid.json()
    body = paid.json()
    assert body["status"] == "completed"
    assert [(t["kind"], t["amount"], t["received"], t["change"]) for t in body["tenders"]] == [
        ("cash", "500.00", "600.00", "100.00")
    ]
    assert (body["points_earned"], body["earning_total"]) == (1000, "500.00")  # retail 2 per 元
    assert body["completed_at"] is not None

    # a completed bill can no longer change
    again = _post(reception_api, url + "lines/", {"item_id": care.pk})
    assert again.status_code == 409
    assert again.json()["code"] == "sales.bill_not_open"


def test_the_store_price_is_a_price_step_with_its_reason(reception_api, manager_api, care, store1):
    assert (
        manager_api.put(f"/api/v1/stores/{store1.pk}/prices/{care.pk}/", {"price": "580.00"}, format="json").status_code
        == 200
    )

    bill = _post(reception_api, BILLS, {}).json()
    body = _post(reception_api, f"{BILLS}{bill['id']}/lines/", {"item_id": care.pk}).json()

    line = body["lines"][0]
    assert (line["list_price"], line["unit_price"]) == ("580.00", "580.00")
    assert line["price_steps"] == [
        _list_step("600.00"),
        {
            "step": "store_price",
            "unit_price": "580.00",
            "unit_price_fen": 58_000,
            "discount": None,
            "reason": "门店价 Store price (静安店)",
        },
    ]
    assert body["member"] is None


def test_void_an_open_bill_requires_a_key_and_a_completed_bill_cannot_be_voided(reception_api, care):
    bill = _post(reception_api, BILLS, {}).json()
    url = f"{BILLS}{bill['id']}/void/"

    assert _post(reception_api, url, {"reason": "客人离开"}).json()["code"] == "idempotency.key_required"
    voided = _post(reception_api, url, {"reason": "客人离开"}, key="void-1")

    assert voided.status_code == 200
    assert (voided.json()["status"], voided.json()["void_reason"]) == ("voided", "客人离开")
    assert voided.json()["voided_at"] is not None
    paid = _post(
        reception_api,
        ONE_SHOT,
        {"lines": [{"item_id": care.pk}], "tenders": [{"kind": "cash", "amount": "600.00"}]},
        key="walk-in",
    ).json()
    refused = _post(reception_api, f"{BILLS}{paid['id']}/void/", {}, key="void-2")
    assert refused.status_code == 409
    assert refused.json()["code"] == "sales.bill_not_open"


# --- refunds --------------------------------------------------------------------------------------------------


def test_S22_full_refund_via_api_undoes_the_S05_bill(
    reception_api, manager_api, s05_shopper, care, manager, api_manager_pin
):
    # given: the S-05 bill
    bill = _post(
        reception_api,
        ONE_SHOT,
        {
            "member_id": s05_shopper.pk,
            "lines": [
                {"item_id": care.pk, "unit_price": "550.00", "approver_id": manager.pk, "approval_pin": api_manager_pin}
            ],
            "tenders": [{"kind": "points", "points": 1000}, {"kind": "stored_value", "amount": "540.00"}],
        },
        key="s05",
    ).json()

    # when: the store manager refunds it in full
    response = _post(manager_api, f"{BILLS}{bill['id']}/refund/", {"reason": "客诉"}, key="s22")

    # then
    assert response.status_code == 201, response.json()
    refund = response.json()
    assert (refund["bill_id"], refund["bill_number"], refund["is_full"]) == (bill["id"], "S1-000001", True)
    assert (refund["amount"], refund["earning"], refund["destination"]) == ("550.00", "450.00", "original")
    assert (refund["points_restored"], refund["points_taken_back"]) == (1000, 450)
    assert [(t["kind"], t["amount"], t["principal"], t["bonus"], t["points"]) for t in refund["tenders"]] == [
        ("points", "10.00", "0.00", "0.00", 1000),
        ("stored_value", "540.00", "450.00", "90.00", 0),
    ]
    assert [(line["quantity"], line["amount"], line["points_taken_back"]) for line in refund["lines"]] == [
        (1, "550.00", 450)
    ]
    assert balances(s05_shopper) == {"principal": 100_000, "bonus": 20_000, "points": 12_000, "growth": 0}
    detail = manager_api.get(f"{BILLS}{bill['id']}/").json()
    assert detail["lines"][0]["refunded_quantity"] == 1
    assert [r["id"] for r in detail["refunds"]] == [refund["id"]]

    # nothing is left to refund
    before = sales_state()
    again = _post(manager_api, f"{BILLS}{bill['id']}/refund/", {"reason": "再退"}, key="s22-again")
    assert again.status_code == 400
    assert again.json()["code"] == "refund.exceeds_paid"
    assert sales_state() == before


def test_refund_by_line_then_the_rest_and_never_more_than_paid(
    reception_api, manager_api, shopper, care, lifting, serum
):
    # given: a cash bill of 1,850.00 earning 4,100 points
    bill = _post(
        reception_api,
        ONE_SHOT,
        {
            "member_id": shopper.pk,
            "lines": [*_three_lines(care, lifting, serum)[:2], {"item_id": serum.pk, "quantity": 2}],
            "tenders": [{"kind": "cash", "amount": "2100.00"}],
        },
        key="cash-bill",
    ).json()
    assert bill["points_earned"] == 600 + 3000 + 1000
    serum_line = bill["lines"][2]["id"]
    url = f"{BILLS}{bill['id']}/refund/"

    # when: one of the two serums comes back
    one = _post(manager_api, url, {"lines": [{"line_id": serum_line, "quantity": 1}], "reason": "过敏"}, key="r-1")

    # then
    assert one.status_code == 201, one.json()
    assert (one.json()["amount"], one.json()["is_full"], one.json()["points_taken_back"]) == ("250.00", False, 500)
    assert [(t["kind"], t["amount"]) for t in one.json()["tenders"]] == [("cash", "250.00")]
    assert balances(shopper)["points"] == 4100
    assert balances(shopper)["growth"] == 185_000

    # more than is left of the line: refused, nothing written
    before = sales_state()
    too_many = _post(manager_api, url, {"lines": [{"line_id": serum_line, "quantity": 2}], "reason": "过敏"}, key="r-2")
    assert too_many.status_code == 400
    assert too_many.json()["code"] == "refund.exceeds_paid"
    assert too_many.json()["extra"] == {"line": serum_line, "remaining": 1, "requested": 2}
    assert sales_state() == before

    # the rest of the bill
    rest = _post(manager_api, url, {"reason": "全部退"}, key="r-3")
    assert rest.status_code == 201
    assert rest.json()["amount"] == "1850.00"
    assert balances(shopper) == {"principal": 0, "bonus": 0, "points": 0, "growth": 0}
    assert [line["refunded_quantity"] for line in manager_api.get(f"{BILLS}{bill['id']}/").json()["lines"]] == [1, 1, 2]


def test_a_refund_to_stored_value_credits_the_principal(reception_api, manager_api, shopper, care):
    bill = _post(
        reception_api,
        ONE_SHOT,
        {"member_id": shopper.pk, "lines": [{"item_id": care.pk}], "tenders": [{"kind": "wechat", "amount": "600.00"}]},
        key="wx-bill",
    ).json()

    response = _post(
        manager_api, f"{BILLS}{bill['id']}/refund/", {"destination": "stored_value", "reason": "转储值"}, key="r-sv"
    )

    assert response.status_code == 201
    assert response.json()["tenders"][0]["destination"] == "stored_value"
    wallet = manager_api.get(f"/api/v1/members/{shopper.pk}/wallet/").json()
    assert (wallet["principal"], wallet["bonus"]) == ("600.00", "0.00")


def test_a_receptionist_may_not_refund(reception_api, care):
    bill = _post(
        reception_api,
        ONE_SHOT,
        {"lines": [{"item_id": care.pk}], "tenders": [{"kind": "cash", "amount": "600.00"}]},
        key="b",
    ).json()

    response = _post(reception_api, f"{BILLS}{bill['id']}/refund/", {"reason": "x"}, key="r")

    assert response.status_code == 403
    assert response.json()["code"] == "auth.permission_denied"
    assert Refund.objects.count() == 0


# --- S-23 and idempotency -------------------------------------------------------------------------------------


def _s23_body(member, care, serum):
    return {
        "member_id": member.pk,
        "lines": [{"item_id": care.pk}, {"item_id": serum.pk}],
        "tenders": [{"kind": "stored_value", "amount": "500.00"}, {"kind": "alipay", "amount": "350.00"}],
    }


def test_S23_idempotent_checkout_via_api(reception_api, shopper, top_up, care, serum):
    # given: principal 1,000.00
    top_up(shopper, "1000.00")
    body = _s23_body(shopper, care, serum)

    # when: the same request twice with the same key
    first = _post(reception_api, ONE_SHOT, body, key="s23")
    state_after_first = sales_state()
    second = _post(reception_api, ONE_SHOT, body, key="s23")

    # then: one bill, charged once, the identical answer
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert Bill.objects.count() == 1
    assert Tender.objects.count() == 2
    assert sales_state() == state_after_first
    assert balances(shopper)["principal"] == 50_000

    # the same key with a different body: refused, nothing written
    changed = {**body, "tenders": [{"kind": "stored_value", "amount": "850.00"}]}
    conflict = _post(reception_api, ONE_SHOT, changed, key="s23")
    assert conflict.status_code == 409
    assert conflict["Content-Type"] == PROBLEM
    assert conflict.json()["code"] == "idempotency.key_reused"
    assert conflict.json()["field"] == "idempotency_key"
    assert sales_state() == state_after_first
    assert balances(shopper)["principal"] == 50_000


def test_a_key_first_used_at_the_front_desk_is_honoured_by_the_api(
    reception_api, cashier_actor, shopper, top_up, care, serum
):
    # given: the front desk checked out with key "desk-7" (no HTTP record of it)
    top_up(shopper, "1000.00")
    desk = bill_checkout(
        actor=cashier_actor,
        member=shopper,
        lines=[LineInput(item_id=care.pk), LineInput(item_id=serum.pk)],
        tenders=[
            TenderInput(kind="stored_value", amount=Money.parse("500.00")),
            TenderInput(kind="alipay", amount=Money.parse("350.00")),
        ],
        idempotency_key="desk-7",
    )
    before = sales_state()

    # when: the API is sent the same checkout with the same key, then another one with it
    same = _post(reception_api, ONE_SHOT, _s23_body(shopper, care, serum), key="desk-7")
    other = _post(
        reception_api, ONE_SHOT, {**_s23_body(shopper, care, serum), "lines": [{"item_id": care.pk}]}, key="desk-7"
    )

    # then: the first bill, charged once; the different request is refused by the service's own check
    assert same.status_code == 201
    assert same.json()["id"] == desk.pk
    assert sales_state() == before
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency.key_reused"
    assert Bill.objects.count() == 1


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("{bill}/checkout/", {"tenders": [{"kind": "cash", "amount": "600.00"}]}),
        ("checkout/", {"lines": [], "tenders": []}),
        ("{paid}/refund/", {"reason": "x"}),
        ("{bill}/void/", {}),
    ],
)
def test_money_moving_bill_calls_require_an_idempotency_key(manager_api, care, path, body):
    open_bill = _post(manager_api, BILLS, {}).json()
    _post(manager_api, f"{BILLS}{open_bill['id']}/lines/", {"item_id": care.pk})
    paid = _post(
        manager_api,
        ONE_SHOT,
        {"lines": [{"item_id": care.pk}], "tenders": [{"kind": "cash", "amount": "600.00"}]},
        key="p",
    ).json()
    before = sales_state()

    response = _post(manager_api, BILLS + path.format(bill=open_bill["id"], paid=paid["id"]), body)

    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert response.json()["code"] == "idempotency.key_required"
    assert response.json()["field"] == "idempotency_key"
    assert sales_state() == before


@pytest.mark.django_db(transaction=True)
def test_concurrent_checkouts_with_one_key_charge_once(client_for, receptionist, shopper, top_up, care, serum):
    # given
    top_up(shopper, "1000.00")
    threads_count = 4
    clients = [client_for(receptionist) for _ in range(threads_count)]
    start = threading.Barrier(threads_count)
    outcomes: list[tuple[int, str]] = []
    bodies: list[dict] = []

    def checkout(client) -> None:
        try:
            start.wait()
            response = _post(client, ONE_SHOT, _s23_body(shopper, care, serum), key="race-co")
            outcomes.append((response.status_code, response.headers.get("Idempotent-Replayed", "")))
            bodies.append(response.json())
        except Exception as error:  # any failure must show up in the assertion
            outcomes.append((0, repr(error)))
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=checkout, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then: one bill, charged once, every caller answered with it
    assert Counter(outcomes) == {(201, ""): 1, (201, "true"): threads_count - 1}
    assert all(body["id"] == bodies[0]["id"] for body in bodies)
    assert Bill.objects.count() == 1
    assert balances(shopper)["principal"] == 50_000


# --- input and business errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "tenders", "field"),
    [
        ([{"item_id": 0}], [{"kind": "wechat", "amount": 850}], "tenders[0].amount"),
        (
            [{"item_id": 0}],
            [{"kind": "cash", "amount": "600.00"}, {"kind": "wechat", "amount": "1.001"}],
            "tenders[1].amount",
        ),
        ([{"item_id": 0}], [{"kind": "cash", "amount": "600.00", "received": "abc"}], "tenders[0].received"),
        ([{"item_id": 0, "unit_price": 12.5}], [{"kind": "cash", "amount": "600.00"}], "lines[0].unit_price"),
    ],
)
def test_a_badly_written_amount_is_a_400_naming_the_field(reception_api, care, lines, tenders, field):
    lines = [{**line, "item_id": care.pk} for line in lines]
    before = sales_state()

    response = _post(reception_api, ONE_SHOT, {"lines": lines, "tenders": tenders}, key="bad")

    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert (body["code"], body["field"]) == ("money.invalid_amount", field)
    assert body["detail_en"].startswith(f"{field}: ")
    assert sales_state() == before


def test_business_refusals_are_problems_and_write_nothing(reception_api, shopper, top_up, care):
    top_up(shopper, "100.00")
    before = sales_state()

    short = _post(
        reception_api,
        ONE_SHOT,
        {"member_id": shopper.pk, "lines": [{"item_id": care.pk}], "tenders": [{"kind": "cash", "amount": "500.00"}]},
        key="e1",
    )
    broke = _post(
        reception_api,
        ONE_SHOT,
        {
            "member_id": shopper.pk,
            "lines": [{"item_id": care.pk}],
            "tenders": [{"kind": "stored_value", "amount": "600.00"}],
        },
        key="e2",
    )
    unknown = _post(
        reception_api,
        ONE_SHOT,
        {"lines": [{"item_id": 999_999}], "tenders": [{"kind": "cash", "amount": "600.00"}]},
        key="e3",
    )

    assert (short.status_code, short.json()["code"]) == (400, "sales.tender_mismatch")
    assert short.json()["extra"] == {"payable_fen": 60_000, "tendered_fen": 50_000}
    assert (broke.status_code, broke.json()["code"]) == (400, "wallet.insufficient_balance")
    assert broke.json()["extra"]["balance"] == "100.00"
    assert (unknown.status_code, unknown.json()["code"]) == (404, "catalog.item_not_found")
    assert sales_state() == before
    assert IdempotencyRecord.objects.count() == 0


# --- store scoping --------------------------------------------------------------------------------------------


@pytest.fixture
def store2_bill(receptionist2, actor_for, store2, care):
    return bill_checkout(
        actor=actor_for(receptionist2, store2),
        lines=[LineInput(item_id=care.pk)],
        tenders=[TenderInput(kind="cash", amount=Money.parse("600.00"))],
        idempotency_key="store2-bill",
    )


@pytest.mark.parametrize(
    ("method", "action", "body", "key"),
    [
        ("get", "", None, None),
        ("get", "receipt/", None, None),
        ("post", "refund/", {"reason": "越权"}, "x-1"),
        ("post", "void/", {}, "x-2"),
        ("post", "checkout/", {"tenders": [{"kind": "cash", "amount": "600.00"}]}, "x-3"),
        ("post", "lines/", {"item_id": 1}, None),
    ],
)
@pytest.mark.parametrize("who", ["reception_api", "manager_api"])
def test_a_store2_bill_is_not_found_from_store1(request, who, store2_bill, method, action, body, key):
    client = request.getfixturevalue(who)
    before = sales_state()
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}

    response = getattr(client, method)(f"{BILLS}{store2_bill.pk}/{action}", body, format="json", **headers)

    assert response.status_code == 404
    assert response.json()["code"] == "sales.bill_not_found"
    assert response.json()["detail_en"] == "Bill not found, or not visible to you."
    assert sales_state() == before


def test_bill_lists_are_store_scoped(reception_api, hq_api, store2_bill, store1, store2, care):
    own = _post(
        reception_api,
        ONE_SHOT,
        {"lines": [{"item_id": care.pk}], "tenders": [{"kind": "cash", "amount": "600.00"}]},
        key="own",
    ).json()

    mine = reception_api.get(BILLS).json()
    other_store = reception_api.get(BILLS, HTTP_X_STORE_ID=str(store2.pk))
    hq_store2 = hq_api.get(BILLS, HTTP_X_STORE_ID=str(store2.pk)).json()

    assert [row["id"] for row in mine["results"]] == [own["id"]]
    assert other_store.status_code == 404
    assert other_store.json()["code"] == "store.not_found"
    assert [row["id"] for row in hq_store2["results"]] == [store2_bill.pk]


def test_bill_list_filters_by_status_and_store_local_day(reception_api, care, cashier_actor):
    paid = _post(
        reception_api,
        ONE_SHOT,
        {"lines": [{"item_id": care.pk}], "tenders": [{"kind": "cash", "amount": "600.00"}]},
        key="p",
    ).json()
    still_open = bill_open(actor=cashier_actor)
    today = timezone.localtime(timezone.now()).date()
    tomorrow = today + timedelta(days=1)

    everything = reception_api.get(BILLS).json()
    completed = reception_api.get(BILLS, {"status": "completed"}).json()
    opened = reception_api.get(
        BILLS, {"status": "open", "date_from": today.isoformat(), "date_to": today.isoformat()}
    ).json()
    future = reception_api.get(BILLS, {"date_from": tomorrow.isoformat()}).json()
    bad_date = reception_api.get(BILLS, {"date_to": "2026-13-01"})
    bad_status = reception_api.get(BILLS, {"status": "paid"})

    assert [row["id"] for row in everything["results"]] == [still_open.pk, paid["id"]]
    assert everything["results"][1]["payable_total"] == "600.00"
    assert [row["id"] for row in completed["results"]] == [paid["id"]]
    assert [row["id"] for row in opened["results"]] == [still_open.pk]
    assert future["count"] == 0
    assert (bad_date.status_code, bad_date.json()["code"], bad_date.json()["field"]) == (
        400,
        "input.invalid_date",
        "date_to",
    )
    assert (bad_status.status_code, bad_status.json()["code"], bad_status.json()["field"]) == (
        400,
        "input.invalid_choice",
        "status",
    )


# --- receipt and daily close ---------------------------------------------------------------------------------


def test_receipt_shows_lines_discounts_tenders_and_balances_after(
    reception_api, s05_shopper, care, manager, api_manager_pin
):
    bill = _post(
        reception_api,
        ONE_SHOT,
        {
            "member_id": s05_shopper.pk,
            "lines": [
                {"item_id": care.pk, "unit_price": "550.00", "approver_id": manager.pk, "approval_pin": api_manager_pin}
            ],
            "tenders": [{"kind": "points", "points": 1000}, {"kind": "stored_value", "amount": "540.00"}],
        },
        key="s05",
    ).json()

    response = reception_api.get(f"{BILLS}{bill['id']}/receipt/")

    assert response.status_code == 200
    receipt = response.json()
    assert (receipt["number"], receipt["store_name"], receipt["member_name"]) == ("S1-000001", "静安店", "林小姐")
    assert (receipt["list_total"], receipt["discount_total"], receipt["payable_total"]) == ("600.00", "50.00", "550.00")
    assert receipt["lines"][0]["discounts"][0]["step"] == "manual_adjustment"
    assert receipt["lines"][0]["discounts"][0]["unit_price"] == "550.00"
    assert receipt["lines"][0]["approved_by"] == str(manager)
    assert [(t["kind"], t["label"], t["amount"]) for t in receipt["tenders"]] == [
        ("points", "积分抵扣 Points offset", "10.00"),
        ("stored_value", "储值 Stored value", "540.00"),
    ]
    assert (receipt["wallet_principal_after"], receipt["wallet_bonus_after"], receipt["points_after"]) == (
        "550.00",
        "110.00",
        11_450,
    )
    assert receipt["refunded_total"] == "0.00"


def test_daily_close_of_the_store(reception_api, manager_api, shopper, top_up, care, serum, store1, store2):
    # given: a recharge by WeChat (1,000.00), a bill paid by cash and stored value, a refund of the serum
    top_up(shopper, "1000.00")
    bill = _post(
        reception_api,
        ONE_SHOT,
        {
            "member_id": shopper.pk,
            "lines": [{"item_id": care.pk}, {"item_id": serum.pk}],
            "tenders": [{"kind": "cash", "amount": "350.00"}, {"kind": "stored_value", "amount": "500.00"}],
        },
        key="day-bill",
    ).json()
    serum_line = bill["lines"][1]["id"]
    _post(
        manager_api,
        f"{BILLS}{bill['id']}/refund/",
        {"lines": [{"line_id": serum_line, "quantity": 1}], "reason": "退货"},
        key="day-refund",
    )
    today = timezone.localtime(timezone.now()).date().isoformat()

    # when
    response = manager_api.get(f"/api/v1/stores/{store1.pk}/daily-close/", {"date": today})

    # then: the refund of 250.00 goes back in proportion: cash 102.94, stored value 147.06
    assert response.status_code == 200, response.json()
    close = response.json()
    assert (close["store_id"], close["day"], close["bills_completed"]) == (store1.pk, today, 1)
    assert (close["sales_total"], close["discount_total"]) == ("850.00", "0.00")
    assert close["by_tender"] == {"cash": "350.00", "stored_value": "500.00"}
    assert close["by_category"] == {"basic_care": "600.00", "retail": "250.00"}
    assert (close["refunds_count"], close["refunds_total"]) == (1, "250.00")
    assert close["refunds_by_tender"] == {"cash": "102.94", "stored_value": "147.06"}
    assert close["takings_by_tender"] == {"cash": "247.06", "wechat": "1000.00"}
    assert (close["cash_in"], close["cash_refunded"], close["cash_expected"]) == ("350.00", "102.94", "247.06")
    assert manager_api.get(f"/api/v1/stores/{store1.pk}/daily-close/").json()["day"] == today

    # a receptionist may not; another store is not found; a bad date names the parameter
    assert reception_api.get(f"/api/v1/stores/{store1.pk}/daily-close/").json()["code"] == "auth.permission_denied"
    assert manager_api.get(f"/api/v1/stores/{store2.pk}/daily-close/").json()["code"] == "store.not_found"
    bad = manager_api.get(f"/api/v1/stores/{store1.pk}/daily-close/", {"date": "20260101"})
    assert (bad.status_code, bad.json()["field"]) == (400, "date")


# --- documentation ----------------------------------------------------------------------------------------------


def test_bill_endpoints_are_documented_with_required_keys(tmp_path):
    import yaml
    from django.core.management import call_command

    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    paths = yaml.safe_load(target.read_text(encoding="utf-8"))["paths"]

    def key_header(path, method):
        return next(p for p in paths[path][method]["parameters"] if p["name"] == "Idempotency-Key")

    for path in (
        "/api/v1/bills/checkout/",
        "/api/v1/bills/{id}/checkout/",
        "/api/v1/bills/{id}/refund/",
        "/api/v1/bills/{id}/void/",
        "/api/v1/members/{id}/wallet/recharge/",
    ):
        assert key_header(path, "post")["required"] is True, path
    assert key_header("/api/v1/bills/", "post").get("required", False) is False
    assert set(paths["/api/v1/bills/{id}/lines/{line_id}/"]) == {"delete", "patch"}
    for path, methods in {
        "/api/v1/bills/": {"get", "post"},
        "/api/v1/bills/{id}/": {"get"},
        "/api/v1/bills/{id}/lines/": {"post"},
        "/api/v1/bills/{id}/receipt/": {"get"},
        "/api/v1/stores/{store_id}/daily-close/": {"get"},
    }.items():
        assert set(paths[path]) == methods, path
    one_shot = paths["/api/v1/bills/checkout/"]["post"]
    assert "application/problem+json" in one_shot["responses"]["409"]["content"]


# --- query counts -------------------------------------------------------------------------------------------------


def _queries(client, url) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


def test_bill_detail_receipt_and_list_do_not_grow_with_lines_tenders_or_refunds(
    reception_api, manager_api, shopper, top_up, care, lifting, serum
):
    # given: a one-line bill with one refund, and a three-line bill with two tenders and two refunds
    top_up(shopper, "1000.00")
    small = _post(
        reception_api,
        ONE_SHOT,
        {"member_id": shopper.pk, "lines": [{"item_id": care.pk}], "tenders": [{"kind": "cash", "amount": "600.00"}]},
        key="small",
    ).json()
    _post(manager_api, f"{BILLS}{small['id']}/refund/", {"reason": "r"}, key="r-small")
    first_list = _queries(manager_api, BILLS)
    big = _post(
        reception_api,
        ONE_SHOT,
        {
            "member_id": shopper.pk,
            "lines": _three_lines(care, lifting, serum),
            "tenders": [{"kind": "stored_value", "amount": "1000.00"}, {"kind": "wechat", "amount": "850.00"}],
        },
        key="big",
    ).json()
    for index, line in enumerate(big["lines"][:2]):
        _post(
            manager_api,
            f"{BILLS}{big['id']}/refund/",
            {"lines": [{"line_id": line["id"], "quantity": 1}], "reason": "r"},
            key=f"r-{index}",
        )

    # then
    assert _queries(manager_api, f"{BILLS}{big['id']}/") == _queries(manager_api, f"{BILLS}{small['id']}/")
    assert _queries(manager_api, f"{BILLS}{big['id']}/receipt/") == _queries(
        manager_api, f"{BILLS}{small['id']}/receipt/"
    )
    assert _queries(manager_api, BILLS) == first_list
