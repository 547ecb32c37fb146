"""Coupons and promotions through the API: templates, promotions, the stacking policy, a member's coupons
(issue, void) and coupons applied at checkout (S-05)."""

from __future__ import annotations

import pytest

from meiye.promotions.models import Coupon, CouponStatus, CouponTemplate, Promotion, PromotionSettings
from meiye.promotions.services import CouponTemplateInput, coupon_issue, coupon_template_save
from meiye.sales.models import Bill
from tests.sales.support import balances

TEMPLATES = "/api/v1/coupon-templates/"
PROMOTIONS = "/api/v1/promotions/"
STACKING = "/api/v1/promotions/stacking/"
ONE_SHOT = "/api/v1/bills/checkout/"
PROBLEM = "application/problem+json"


def _post(client, url, body, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(url, body, format="json", **headers)


@pytest.fixture
def fifty_off(hq_actor) -> CouponTemplate:
    return coupon_template_save(
        actor=hq_actor,
        data=CouponTemplateInput(name="50元代金券", kind="amount_off", amount_off_fen=5_000, valid_days=30),
    )


@pytest.fixture
def s05_coupon(cashier_actor, s05_shopper, fifty_off) -> Coupon:
    return coupon_issue(
        actor=cashier_actor, member=s05_shopper, template=fifty_off, source="manual", idempotency_key="api-c1"
    )


# --- Coupon templates -----------------------------------------------------------------------------------------------


def test_hq_creates_lists_and_changes_a_coupon_template(hq_api, reception_api, store1):
    created = _post(
        hq_api,
        TEMPLATES,
        {"name": "50元代金券", "kind": "amount_off", "amount_off": "50.00", "min_spend": "300.00", "valid_days": 30},
        key="t-1",
    )
    listed = reception_api.get(TEMPLATES)
    template_id = created.json()["id"]
    changed = hq_api.patch(
        f"{TEMPLATES}{template_id}/", {"amount_off": "60.00", "store_ids": [store1.pk]}, format="json"
    )

    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["kind"], body["amount_off"], body["min_spend"], body["pay_bp"], body["valid_days"]) == (
        "amount_off",
        "50.00",
        "300.00",
        10_000,
        30,
    )
    assert listed.status_code == 200
    assert [(t["id"], t["name"]) for t in listed.json()["results"]] == [(template_id, "50元代金券")]
    assert changed.status_code == 200, changed.json()
    assert (changed.json()["amount_off"], changed.json()["min_spend"], changed.json()["store_ids"]) == (
        "60.00",
        "300.00",
        [store1.pk],
    )
    saved = CouponTemplate.objects.get()
    assert (saved.amount_off_fen, saved.min_spend_fen, saved.valid_days) == (6_000, 30_000, 30)


def test_a_receptionist_may_not_create_a_template(reception_api):
    response = _post(
        reception_api, TEMPLATES, {"name": "x", "kind": "amount_off", "amount_off": "5.00", "valid_days": 1}
    )

    assert response.status_code == 403
    assert response["Content-Type"].startswith(PROBLEM)
    assert CouponTemplate.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"name": "空券", "kind": "amount_off", "valid_days": 30}, "promotions.invalid_amount_off", "amount_off"),
        ({"name": "折扣券", "kind": "percent_off", "pay_bp": 8800}, "promotions.invalid_valid_days", "valid_days"),
        (
            {"name": "坏金额", "kind": "amount_off", "amount_off": 50, "valid_days": 30},
            "money.invalid_amount",
            "amount_off",
        ),
    ],
)
def test_a_refused_template_is_a_problem_naming_the_field_and_writes_nothing(hq_api, body, code, field):
    response = _post(hq_api, TEMPLATES, body)

    assert response.status_code == 400
    problem = response.json()
    assert (problem["code"], problem["field"]) == (code, field)
    assert problem["detail_zh"] and problem["detail_en"]
    assert CouponTemplate.objects.count() == 0


# --- Promotions and the stacking policy --------------------------------------------------------------------------


def test_hq_creates_and_changes_a_promotion(hq_api, reception_api):
    created = _post(
        hq_api,
        PROMOTIONS,
        {"name": "满1000减100", "kind": "spend_save", "threshold": "1000.00", "save": "100.00", "item_kind": "service"},
    )
    promotion_id = created.json()["id"]
    changed = hq_api.patch(f"{PROMOTIONS}{promotion_id}/", {"repeat": True, "priority": 5}, format="json")
    refused = hq_api.patch(f"{PROMOTIONS}{promotion_id}/", {"save": "2000.00"}, format="json")
    listed = reception_api.get(PROMOTIONS, {"active_only": "true"})

    assert created.status_code == 201, created.json()
    assert (created.json()["threshold"], created.json()["save"], created.json()["priority"]) == (
        "1000.00",
        "100.00",
        100,
    )
    assert changed.status_code == 200
    assert (changed.json()["repeat"], changed.json()["priority"], changed.json()["save"]) == (True, 5, "100.00")
    assert refused.status_code == 400 and refused.json()["code"] == "promotions.invalid_save"
    assert [p["name"] for p in listed.json()["results"]] == ["满1000减100"]
    saved = Promotion.objects.get()
    assert (saved.threshold_fen, saved.save_fen, saved.repeat, saved.priority) == (100_000, 10_000, True, 5)


def test_the_stacking_policy(hq_api, reception_api):
    default = reception_api.get(STACKING)
    refused = reception_api.put(STACKING, {"stacking": "stack"}, format="json")
    saved = hq_api.put(STACKING, {"stacking": "stack"}, format="json")

    assert default.status_code == 200 and default.json() == {"stacking": "best_single"}
    assert refused.status_code == 403
    assert saved.status_code == 200 and saved.json() == {"stacking": "stack"}
    assert PromotionSettings.objects.get().stacking == "stack"
    assert reception_api.get(STACKING).json() == {"stacking": "stack"}


# --- A member's coupons ------------------------------------------------------------------------------------------


def test_issuing_a_coupon_requires_a_key_and_is_idempotent(reception_api, shopper, fifty_off):
    url = f"/api/v1/members/{shopper.pk}/coupons/"

    without_key = _post(reception_api, url, {"template_id": fifty_off.pk})
    first = _post(reception_api, url, {"template_id": fifty_off.pk}, key="issue-1")
    again = _post(reception_api, url, {"template_id": fifty_off.pk}, key="issue-1")
    listed = reception_api.get(url)

    assert without_key.status_code == 400 and without_key.json()["code"] == "idempotency.key_required"
    assert first.status_code == 201, first.json()
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    coupon = Coupon.objects.get()
    assert (first.json()["id"], first.json()["code"], first.json()["status"]) == (coupon.pk, coupon.code, "active")
    assert first.json()["template"] == {"id": fifty_off.pk, "name": "50元代金券", "kind": "amount_off"}
    assert [c["id"] for c in listed.json()["results"]] == [coupon.pk]


def test_issuing_an_unknown_template_is_a_400(reception_api, shopper):
    response = _post(reception_api, f"/api/v1/members/{shopper.pk}/coupons/", {"template_id": 999_999}, key="x-1")

    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == ("coupon.invalid_template", "template_id")
    assert Coupon.objects.count() == 0


def test_another_stores_member_and_her_coupons_are_not_found(reception_api, shopper2, hq_actor, fifty_off):
    coupon = coupon_issue(actor=hq_actor, member=shopper2, template=fifty_off, source="manual", idempotency_key="s2")

    listed = reception_api.get(f"/api/v1/members/{shopper2.pk}/coupons/")
    voided = _post(reception_api, f"/api/v1/coupons/{coupon.pk}/void/", {"reason": "x"})

    assert listed.status_code == 404 and voided.status_code == 404
    assert voided.json()["code"] == "coupon.not_found"
    coupon.refresh_from_db()
    assert coupon.status == CouponStatus.ACTIVE


def test_voiding_a_coupon(reception_api, s05_coupon):
    url = f"/api/v1/coupons/{s05_coupon.pk}/void/"

    voided = _post(reception_api, url, {"reason": "顾客放弃"})
    again = _post(reception_api, url, {"reason": "再次作废"})

    assert voided.status_code == 200 and voided.json()["status"] == "void"
    assert again.status_code == 409 and again.json()["code"] == "coupon.not_active"
    s05_coupon.refresh_from_db()
    assert s05_coupon.status == CouponStatus.VOID


# --- Coupons at checkout ---------------------------------------------------------------------------------------------


def test_S05_checkout_now_with_a_coupon_takes_50_off(reception_api, s05_shopper, care, s05_coupon):
    # given: principal 1,000.00, bonus 200.00, 12,000 points and a 50.00-off coupon

    # when: basic care 600.00 with the coupon (550.00), 1,000 points = 10.00, 540.00 stored value
    response = _post(
        reception_api,
        ONE_SHOT,
        {
            "member_id": s05_shopper.pk,
            "lines": [{"item_id": care.pk}],
            "tenders": [{"kind": "points", "points": 1000}, {"kind": "stored_value", "amount": "540.00"}],
            "coupon_ids": [s05_coupon.pk],
        },
        key="s05-coupon",
    )

    # then
    assert response.status_code == 201, response.json()
    bill = response.json()
    assert (bill["list_total"], bill["discount_total"], bill["payable_total"]) == ("600.00", "50.00", "550.00")
    line = bill["lines"][0]
    assert (line["unit_price"], line["discount"], line["line_total"]) == ("600.00", "50.00", "550.00")
    assert (line["earning"], line["points_earned"]) == ("450.00", 450)
    coupon_step = line["price_steps"][-1]
    assert (coupon_step["step"], coupon_step["discount"]) == ("coupon", "50.00")
    assert coupon_step["reason"] == f"优惠券 Coupon: 50元代金券 {s05_coupon.code}"
    assert balances(s05_shopper) == {"principal": 55_000, "bonus": 11_000, "points": 11_450, "growth": 45_000}
    s05_coupon.refresh_from_db()
    assert (s05_coupon.status, s05_coupon.used_bill_id, s05_coupon.discount_fen) == ("used", bill["id"], 5_000)
    receipt = reception_api.get(f"/api/v1/bills/{bill['id']}/receipt/").json()
    assert receipt["lines"][0]["discount"] == "50.00"
    assert [(d["step"], d["amount"]) for d in receipt["lines"][0]["discounts"]] == [("coupon", "50.00")]
    coupons = reception_api.get(f"/api/v1/members/{s05_shopper.pk}/coupons/").json()["results"]
    assert [(c["status"], c["used_bill_id"], c["discount"]) for c in coupons] == [("used", bill["id"], "50.00")]


def test_paying_an_open_bill_with_a_coupon(reception_api, s05_shopper, care, s05_coupon):
    bill = _post(reception_api, "/api/v1/bills/", {"member_id": s05_shopper.pk}).json()
    _post(reception_api, f"/api/v1/bills/{bill['id']}/lines/", {"item_id": care.pk})

    paid = _post(
        reception_api,
        f"/api/v1/bills/{bill['id']}/checkout/",
        {"tenders": [{"kind": "cash", "amount": "550.00"}], "coupon_ids": [s05_coupon.pk]},
        key="open-coupon",
    )

    assert paid.status_code == 200, paid.json()
    assert (paid.json()["payable_total"], paid.json()["lines"][0]["discount"]) == ("550.00", "50.00")
    s05_coupon.refresh_from_db()
    assert s05_coupon.status == CouponStatus.USED


def test_a_used_coupon_is_refused_at_checkout_and_nothing_is_written(reception_api, s05_shopper, care, s05_coupon):
    body = {
        "member_id": s05_shopper.pk,
        "lines": [{"item_id": care.pk}],
        "tenders": [{"kind": "cash", "amount": "550.00"}],
        "coupon_ids": [s05_coupon.pk],
    }
    assert _post(reception_api, ONE_SHOT, body, key="first").status_code == 201
    bills = Bill.objects.count()

    again = _post(reception_api, ONE_SHOT, body, key="second")

    assert again.status_code == 400
    assert (again.json()["code"], again.json()["field"]) == ("coupon.not_active", "coupons")
    assert Bill.objects.count() == bills
