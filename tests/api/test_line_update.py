"""PATCH /api/v1/bills/{id}/lines/{line_id}/: change a line of an open bill in place (``bill_line_update``)."""

from __future__ import annotations

from meiye.core.models import IdempotencyRecord
from tests.sales.support import sales_state

BILLS = "/api/v1/bills/"
PROBLEM = "application/problem+json"


def _bill_with_two_lines(client, member, care, serum) -> tuple[str, int, int]:
    bill = client.post(BILLS, {"member_id": member.pk}, format="json").json()
    url = f"{BILLS}{bill['id']}/"
    client.post(url + "lines/", {"item_id": care.pk}, format="json")
    body = client.post(url + "lines/", {"item_id": serum.pk}, format="json").json()
    return url, body["lines"][0]["id"], body["lines"][1]["id"]


def _patch(client, url, body, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.patch(url, body, format="json", **headers)


def test_patch_a_quantity_keeps_the_line_and_its_place(reception_api, shopper, care, serum, beautician):
    url, care_line, serum_line = _bill_with_two_lines(reception_api, shopper, care, serum)

    response = _patch(reception_api, f"{url}lines/{care_line}/", {"quantity": 2, "performed_by_id": beautician.pk})

    assert response.status_code == 200, response.json()
    body = response.json()
    assert [(li["id"], li["quantity"], li["line_total"], li["performed_by_id"]) for li in body["lines"]] == [
        (care_line, 2, "1200.00", beautician.pk),
        (serum_line, 1, "250.00", None),
    ]
    assert body["payable_total"] == "1450.00"


def test_S20_patch_keeps_an_approved_price_without_the_pin_and_asks_again_below_it(
    reception_api, shopper, care, serum, manager, api_manager_pin
):
    url, care_line, _serum_line = _bill_with_two_lines(reception_api, shopper, care, serum)
    line_url = f"{url}lines/{care_line}/"
    approved = _patch(
        reception_api,
        line_url,
        {"unit_price": "480.00", "approver_id": manager.pk, "approval_pin": api_manager_pin},
        key="patch-1",
    )
    assert approved.status_code == 200, approved.json()
    # the PIN is neither stored nor part of the fingerprint
    assert "approval_pin" not in str(IdempotencyRecord.objects.get(key="patch-1").response)

    # only the quantity: still approved, no PIN
    more = _patch(reception_api, line_url, {"quantity": 3})
    line = more.json()["lines"][0]
    assert (line["quantity"], line["unit_price"], line["line_total"], line["approved_by"]["id"]) == (
        3,
        "480.00",
        "1440.00",
        manager.pk,
    )

    # lower than approved: refused, nothing written
    before = sales_state()
    lower = _patch(reception_api, line_url, {"unit_price": "450.00"})
    assert lower.status_code == 400
    assert lower["Content-Type"] == PROBLEM
    assert (lower.json()["code"], lower.json()["field"]) == ("pricing.approval_required", "unit_price")
    assert sales_state() == before

    # null: back to the member price, no approval
    cleared = _patch(reception_api, line_url, {"unit_price": None})
    line = cleared.json()["lines"][0]
    assert (line["unit_price"], line["approved_by"]) == ("600.00", None)


def test_patch_replays_with_the_same_key(reception_api, shopper, care, serum):
    url, care_line, _ = _bill_with_two_lines(reception_api, shopper, care, serum)

    first = _patch(reception_api, f"{url}lines/{care_line}/", {"quantity": 2}, key="qty-2")
    again = _patch(reception_api, f"{url}lines/{care_line}/", {"quantity": 2}, key="qty-2")
    other = _patch(reception_api, f"{url}lines/{care_line}/", {"quantity": 4}, key="qty-2")

    assert again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency.key_reused"


def test_patch_refusals_write_nothing(reception_api, shopper, care, serum):
    url, care_line, _ = _bill_with_two_lines(reception_api, shopper, care, serum)
    before = sales_state()

    missing = _patch(reception_api, f"{url}lines/999999/", {"quantity": 2})
    zero = _patch(reception_api, f"{url}lines/{care_line}/", {"quantity": 0})
    bad_amount = _patch(reception_api, f"{url}lines/{care_line}/", {"unit_price": 480})

    assert (missing.status_code, missing.json()["code"]) == (404, "sales.line_not_found")
    assert (zero.status_code, zero.json()["code"]) == (400, "sales.invalid_quantity")
    assert (bad_amount.status_code, bad_amount.json()["code"]) == (400, "money.invalid_amount")
    assert sales_state() == before
