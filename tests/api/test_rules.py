"""Earning rules through the API: the rules (HQ writes, the till reads), a member's check-in (S-11, idempotent),
the daily-limit review flags (store-scoped), and the offers preview of an open bill with coupons (S-05)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache

from meiye.audit.models import AuditLog
from meiye.loyalty.models import CheckIn, RulesSettings
from meiye.loyalty.rules import checkin_record, earning_flags_raise, rules_settings_save
from meiye.loyalty.selectors import local_today, points_balance
from meiye.org.context import Actor
from meiye.promotions.models import Coupon, CouponStatus, CouponTemplate
from meiye.promotions.services import CouponTemplateInput, coupon_issue, coupon_template_save
from meiye.sales.models import BillLine

RULES = "/api/v1/rules/"
FLAGS = "/api/v1/earning-flags/"
PROBLEM = "application/problem+json"

OFF = {
    "birthday_multiplier_bp": 10_000,
    "birthday_gift_points": 0,
    "member_day": None,
    "member_day_multiplier_bp": 10_000,
    "checkin_points": 0,
    "checkin_streak_days": 7,
    "checkin_streak_bonus": 0,
    "dormant_days": None,
    "dormant_points": 0,
    "dormant_coupon_template_id": None,
    "referral_referrer_points": 0,
    "referral_referee_points": 0,
    "referral_refund_window_days": 7,
    "referral_spend_threshold_fen": None,
    "referral_coupon_template_id": None,
    "daily_earning_limit": None,
}


@pytest.fixture(autouse=True)
def _fresh_rules_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def member(make_member, store1):
    return make_member(store1, name="周女士", phone="13900001111")


def _put(client, body, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.put(RULES, body, format="json", **headers)


# --- The rules ------------------------------------------------------------------------------------------------------


def test_the_till_reads_the_rules_and_hq_changes_only_what_it_sends(hq_api, reception_api):
    assert reception_api.get(RULES).json() == OFF

    changed = _put(hq_api, {"checkin_points": 10, "checkin_streak_bonus": 50, "member_day": 8}, key="rules-1")
    again = _put(hq_api, {"checkin_points": 10, "checkin_streak_bonus": 50, "member_day": 8}, key="rules-1")

    assert changed.status_code == 200, changed.json()
    assert changed.json() == {**OFF, "checkin_points": 10, "checkin_streak_bonus": 50, "member_day": 8}
    assert again.json() == changed.json() and again.headers["Idempotent-Replayed"] == "true"
    assert reception_api.get(RULES).json() == changed.json()
    cleared = _put(hq_api, {"member_day": None}, key="rules-2")
    assert cleared.json()["member_day"] is None and cleared.json()["checkin_points"] == 10
    assert AuditLog.objects.filter(action="loyalty.rules_save").count() == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"member_day": 29}, "member_day"),
        ({"birthday_multiplier_bp": 5_000}, "birthday_multiplier_bp"),
        ({"checkin_points": 10, "dormant_coupon_template_id": 999_999}, "dormant_coupon_template_id"),
        ({"daily_earning_limit": "lots"}, "daily_earning_limit"),
    ],
)
def test_a_refused_rule_names_its_field_and_changes_nothing(hq_api, hq_actor, body, field):
    rules_settings_save(actor=hq_actor, checkin_points=5)
    before = list(RulesSettings.objects.values_list("checkin_points", "member_day", "birthday_multiplier_bp"))

    response = _put(hq_api, body, key=f"bad-{field}")

    assert response.status_code == 400 and response["Content-Type"] == PROBLEM
    problem = response.json()
    assert problem["field"] == field, problem
    assert list(RulesSettings.objects.values_list("checkin_points", "member_day", "birthday_multiplier_bp")) == before


def test_only_hq_changes_the_rules(reception_api, client_for, manager):
    assert _put(reception_api, {"checkin_points": 10}, key="r-1").status_code == 403
    assert _put(client_for(manager), {"checkin_points": 10}, key="r-2").status_code == 403
    assert RulesSettings.objects.count() == 0


# --- Check-in -------------------------------------------------------------------------------------------------------


def test_S11_checkin_gives_10_points_once_a_day(hq_actor, reception_api, member, store1):
    rules_settings_save(actor=hq_actor, checkin_points=10, checkin_streak_days=7, checkin_streak_bonus=50)
    url = f"/api/v1/members/{member.pk}/checkin/"

    first = reception_api.post(url, format="json", HTTP_IDEMPOTENCY_KEY="ci-1")
    replay = reception_api.post(url, format="json", HTTP_IDEMPOTENCY_KEY="ci-1")
    second = reception_api.post(url, format="json", HTTP_IDEMPOTENCY_KEY="ci-2")

    today = local_today(store1).isoformat()
    assert first.status_code == 201, first.json()
    assert first.json() == {
        "member_id": member.pk,
        "on": today,
        "streak_day": 1,
        "points": 10,
        "bonus": 0,
        "already_checked_in": False,
    }
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert second.status_code == 200 and second.json()["already_checked_in"] is True
    assert points_balance(member) == 10 and CheckIn.objects.count() == 1


def test_the_checkin_streak_bonus_on_the_7th_day(hq_actor, reception_api, member, store1):
    rules_settings_save(actor=hq_actor, checkin_points=10, checkin_streak_days=7, checkin_streak_bonus=50)
    today = local_today(store1)
    for back in range(6, 0, -1):
        checkin_record(actor=hq_actor, member=member, on=today - timedelta(days=back))

    response = reception_api.post(f"/api/v1/members/{member.pk}/checkin/", format="json", HTTP_IDEMPOTENCY_KEY="c7")

    assert (response.json()["streak_day"], response.json()["points"], response.json()["bonus"]) == (7, 10, 50)
    assert points_balance(member) == 120


def test_checkin_is_refused_to_a_beautician_and_for_another_stores_member(
    hq_actor, client_for, beautician, reception_api, make_member, store2
):
    rules_settings_save(actor=hq_actor, checkin_points=10)
    other = make_member(store2)
    mine = make_member(hq_actor.store)

    forbidden = client_for(beautician).post(
        f"/api/v1/members/{mine.pk}/checkin/", format="json", HTTP_IDEMPOTENCY_KEY="b-1"
    )
    hidden = reception_api.post(f"/api/v1/members/{other.pk}/checkin/", format="json", HTTP_IDEMPOTENCY_KEY="b-2")

    assert forbidden.status_code == 403
    assert hidden.status_code == 404 and hidden.json()["code"] == "member.not_found"
    assert CheckIn.objects.count() == 0


# --- Review flags ---------------------------------------------------------------------------------------------------


def test_flags_are_listed_for_managers_of_the_members_stores(
    hq_actor, hq_api, manager_api, reception_api, member, make_member, store2, actor_for, hq_admin
):
    rules_settings_save(actor=hq_actor, checkin_points=10, daily_earning_limit=5)
    elsewhere = make_member(store2, name="李女士")
    today = local_today(hq_actor.store)
    checkin_record(actor=hq_actor, member=member, on=today)
    checkin_record(actor=actor_for(hq_admin, store2), member=elsewhere, on=today)
    earning_flags_raise(actor=Actor.system(hq_actor.organisation, hq_actor.store), on=today)

    mine = manager_api.get(FLAGS)
    everyone = hq_api.get(FLAGS)

    assert mine.status_code == 200
    results = mine.json()["results"]
    assert [(r["member_id"], r["member_name"], r["on"], r["points"], r["limit"]) for r in results] == [
        (member.pk, "周女士", today.isoformat(), 10, 5)
    ]
    assert len(everyone.json()["results"]) == 2
    assert hq_api.get(FLAGS, {"date_from": "2000-01-01", "date_to": "2000-01-02"}).json()["results"] == []
    assert reception_api.get(FLAGS).status_code == 403


# --- Offers preview -------------------------------------------------------------------------------------------------


@pytest.fixture
def fifty_off(hq_actor) -> CouponTemplate:
    return coupon_template_save(
        actor=hq_actor,
        data=CouponTemplateInput(name="50元代金券", kind="amount_off", amount_off_fen=5_000, valid_days=30),
    )


@pytest.fixture
def big_spender_only(hq_actor) -> CouponTemplate:
    return coupon_template_save(
        actor=hq_actor,
        data=CouponTemplateInput(
            name="满1000减200", kind="amount_off", amount_off_fen=20_000, min_spend_fen=100_000, valid_days=30
        ),
    )


def test_S05_offers_preview_with_a_coupon(reception_api, cashier_actor, shopper, care, fifty_off, big_spender_only):
    fifty = coupon_issue(actor=cashier_actor, member=shopper, template=fifty_off, source="manual", idempotency_key="p1")
    big = coupon_issue(
        actor=cashier_actor, member=shopper, template=big_spender_only, source="manual", idempotency_key="p2"
    )
    bill = reception_api.post("/api/v1/bills/", {"member_id": shopper.pk}, format="json", HTTP_IDEMPOTENCY_KEY="o1")
    bill_id = bill.json()["id"]
    reception_api.post(
        f"/api/v1/bills/{bill_id}/lines/", {"item_id": care.pk}, format="json", HTTP_IDEMPOTENCY_KEY="o2"
    )
    lines_before = list(BillLine.objects.values_list("unit_price_fen", "discount_fen", "line_total_fen", "price_steps"))

    plain = reception_api.get(f"/api/v1/bills/{bill_id}/offers/")
    with_coupon = reception_api.get(f"/api/v1/bills/{bill_id}/offers/", {"coupon_ids": str(fifty.pk)})

    assert plain.status_code == 200, plain.json()
    assert (plain.json()["payable_before"], plain.json()["payable_after"], plain.json()["discount"]) == (
        "600.00",
        "600.00",
        "0.00",
    )
    options = {c["id"]: c for c in plain.json()["coupons"]}
    assert (options[fifty.pk]["applicable"], options[fifty.pk]["applied"]) == (True, False)
    assert (options[big.pk]["applicable"], options[big.pk]["refusal_code"]) == (False, "coupon.min_spend")

    body = with_coupon.json()
    assert with_coupon.status_code == 200, body
    assert (body["payable_before_fen"], body["discount_fen"], body["payable_after_fen"]) == (60_000, 5_000, 55_000)
    assert body["coupon_ids"] == [fifty.pk]
    (line,) = body["lines"]
    assert (line["list_price"], line["discount"], line["line_total"]) == ("600.00", "50.00", "550.00")
    coupon_steps = [d for d in line["discounts"] if d["step"] == "coupon"]
    assert len(coupon_steps) == 1 and coupon_steps[0]["amount_fen"] == 5_000
    assert "50元代金券" in coupon_steps[0]["reason"] or fifty.code in coupon_steps[0]["reason"]
    assert {c["id"]: c["applied"] for c in body["coupons"]} == {fifty.pk: True, big.pk: False}

    # a preview writes nothing: the coupon is still active and the lines unchanged
    fifty.refresh_from_db()
    assert fifty.status == CouponStatus.ACTIVE
    assert list(BillLine.objects.values_list("unit_price_fen", "discount_fen", "line_total_fen", "price_steps")) == (
        lines_before
    )


def test_offers_preview_refusals(
    reception_api, client_for, receptionist2, cashier_actor, shopper, care, big_spender_only
):
    big = coupon_issue(
        actor=cashier_actor, member=shopper, template=big_spender_only, source="manual", idempotency_key="q1"
    )
    bill_id = reception_api.post(
        "/api/v1/bills/", {"member_id": shopper.pk}, format="json", HTTP_IDEMPOTENCY_KEY="q2"
    ).json()["id"]
    reception_api.post(
        f"/api/v1/bills/{bill_id}/lines/", {"item_id": care.pk}, format="json", HTTP_IDEMPOTENCY_KEY="q3"
    )
    url = f"/api/v1/bills/{bill_id}/offers/"

    too_small = reception_api.get(url, {"coupon_ids": str(big.pk)})
    garbage = reception_api.get(url, {"coupon_ids": "1,x"})
    other_store = client_for(receptionist2).get(url)

    assert too_small.status_code == 400 and too_small.json()["code"] == "coupon.min_spend"
    assert garbage.status_code == 400 and garbage.json()["code"] == "input.invalid_ids"
    assert other_store.status_code == 404
    assert Coupon.objects.get(pk=big.pk).status == CouponStatus.ACTIVE


def test_a_manager_reviews_a_flag_with_a_note_once(hq_actor, manager_api, member):
    rules_settings_save(actor=hq_actor, checkin_points=10, daily_earning_limit=5)
    today = local_today(hq_actor.store)
    checkin_record(actor=hq_actor, member=member, on=today)
    earning_flags_raise(actor=Actor.system(hq_actor.organisation, hq_actor.store), on=today)
    flag_id = manager_api.get(FLAGS).json()["results"][0]["id"]
    url = f"/api/v1/earning-flags/{flag_id}/review/"

    refused = manager_api.post(url, {"note": " "}, format="json", HTTP_IDEMPOTENCY_KEY="r0")
    done = manager_api.post(url, {"note": "团购核实无误"}, format="json", HTTP_IDEMPOTENCY_KEY="r1")
    again = manager_api.post(url, {"note": "再看一次"}, format="json", HTTP_IDEMPOTENCY_KEY="r2")

    assert refused.status_code == 400
    assert done.status_code == 200, done.json()
    body = done.json()
    assert body["review_note"] == "团购核实无误" and body["reviewed_by"] and body["reviewed_at"]
    assert again.status_code == 409 and again.json()["code"] == "loyalty.flag_already_reviewed"
    assert manager_api.get(FLAGS).json()["results"][0]["review_note"] == "团购核实无误"
