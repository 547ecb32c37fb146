"""Member tiers through the API: the ladder (HQ writes, everyone at the till reads), a member's tier with the
progress to the next one, her tier history, and granting a tier by hand (S-09)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from meiye.audit.models import AuditLog
from meiye.catalog.services import item_save
from meiye.core.money import Money
from meiye.loyalty.models import MemberTier, Tier, TierChange
from meiye.loyalty.selectors import local_today
from meiye.sales.services import LineInput, TenderInput, bill_checkout
from tests.loyalty.tiers_reference import grant, reference_tiers

TIERS = "/api/v1/tiers/"
PROBLEM = "application/problem+json"

SILVER = {
    "code": "silver",
    "name_zh": "银卡",
    "name_en": "Silver",
    "threshold": "3000.00",
    "discounts_bp": {"service": 1000},
    "points_multiplier_bp": 12000,
    "points_per_yuan_offset": 100,
    "points_lifetime_months": 12,
    "perks_zh": "生日礼",
    "perks_en": "Birthday gift",
}


@pytest.fixture
def tiers(hq_actor):
    return reference_tiers(hq_actor)


@pytest.fixture
def member(make_member, store1):
    return make_member(store1, name="周女士", phone="13900001111")


def _state() -> dict:
    return {
        "ladder": list(
            Tier.objects.order_by("pk").values_list(
                "code", "name_zh", "threshold_fen", "discounts_bp", "points_multiplier_bp", "points_lifetime_months"
            )
        ),
        "states": list(MemberTier.objects.values_list("member_id", "tier_id", "floor_tier_id", "floor_until")),
        "changes": TierChange.objects.count(),
        "audit": AuditLog.objects.filter(action__startswith="loyalty.tier").count(),
    }


# --- the ladder ------------------------------------------------------------------------------------------------


def test_hq_creates_replaces_changes_and_deletes_tiers(hq_api):
    regular = hq_api.post(TIERS, {"code": "regular", "name_zh": "普通会员", "threshold": "0"}, format="json")
    created = hq_api.post(TIERS, SILVER, format="json")
    replaced = hq_api.post(TIERS, {**SILVER, "name_zh": "银卡会员"}, format="json")
    changed = hq_api.patch(f"{TIERS}{created.json()['id']}/", {"threshold": "3500.00"}, format="json")

    assert (regular.status_code, created.status_code, replaced.status_code, changed.status_code) == (201, 201, 200, 200)
    assert created.json() == {
        "id": created.json()["id"],
        "code": "silver",
        "name_zh": "银卡",
        "name_en": "Silver",
        "threshold": "3000.00",
        "threshold_fen": 300_000,
        "discounts_bp": {"service": 1000},
        "points_multiplier_bp": 12000,
        "points_per_yuan_offset": 100,
        "points_lifetime_months": 12,
        "perks_zh": "生日礼",
        "perks_en": "Birthday gift",
        "updated_at": created.json()["updated_at"],
    }
    assert replaced.json()["id"] == created.json()["id"]
    body = changed.json()
    assert (body["name_zh"], body["threshold"], body["discounts_bp"], body["points_multiplier_bp"]) == (
        "银卡会员",
        "3500.00",
        {"service": 1000},
        12000,
    )
    listed = hq_api.get(TIERS).json()
    assert [(row["code"], row["threshold"]) for row in listed["results"]] == [
        ("regular", "0.00"),
        ("silver", "3500.00"),
    ]
    assert hq_api.get(f"{TIERS}{regular.json()['id']}/").json()["points_multiplier_bp"] == 10000

    deleted = hq_api.delete(f"{TIERS}{created.json()['id']}/")

    assert deleted.status_code == 204
    assert list(Tier.objects.values_list("code", flat=True)) == ["regular"]
    assert AuditLog.objects.filter(action="loyalty.tier_save").count() == 4
    assert AuditLog.objects.filter(action="loyalty.tier_delete").count() == 1


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({**SILVER, "threshold": "10000.00"}, 400, "tier.threshold_not_increasing", "threshold"),
        ({**SILVER, "code": "Platinum!"}, 400, "tier.invalid_code", "code"),
        ({**SILVER, "threshold": "-1.00"}, 400, "tier.invalid_threshold", "threshold"),
        ({**SILVER, "threshold": 3000}, 400, "money.invalid_amount", "threshold"),
        ({**SILVER, "discounts_bp": {"massage": 500}}, 400, "tier.invalid_discount_category", "discounts_bp.massage"),
        ({**SILVER, "discounts_bp": {"service": 12000}}, 400, "tier.invalid_number", "discounts_bp.service"),
        ({**SILVER, "points_multiplier_bp": 0}, 400, "tier.invalid_number", "points_multiplier_bp"),
        ({**SILVER, "points_lifetime_months": 121}, 400, "tier.invalid_number", "points_lifetime_months"),
        ({**SILVER, "name_zh": ""}, 400, "input.invalid", "name_zh"),
    ],
)
def test_refusals_name_the_field_and_change_nothing(hq_api, tiers, body, status, code, field):
    before = _state()

    response = hq_api.post(
        TIERS, {**body, "code": body["code"] if body["code"] != "silver" else "platinum"}, format="json"
    )

    assert response.status_code == status
    assert response["Content-Type"] == PROBLEM
    problem = response.json()
    assert (problem["code"], problem.get("field")) == (code, field)
    assert problem["detail_zh"] and problem["detail_en"]
    assert _state() == before


def test_the_first_tier_must_start_at_zero(hq_api):
    response = hq_api.post(TIERS, SILVER, format="json")

    assert (response.status_code, response.json()["code"]) == (400, "tier.lowest_not_zero")
    assert response.json()["detail_zh"] == "门槛成长值：最低等级必须从 0 开始。"
    assert not Tier.objects.exists()


def test_a_tier_in_use_or_the_lowest_cannot_be_deleted(hq_api, hq_actor, tiers, member):
    grant(hq_actor, member, tiers["gold"])
    before = _state()

    in_use = hq_api.delete(f"{TIERS}{tiers['gold'].pk}/")
    lowest = hq_api.delete(f"{TIERS}{tiers['regular'].pk}/")
    missing = hq_api.delete(f"{TIERS}999999/")

    assert (in_use.status_code, in_use.json()["code"]) == (409, "tier.in_use")
    assert (lowest.status_code, lowest.json()["code"]) == (400, "tier.lowest_required")
    assert (missing.status_code, missing.json()["code"]) == (404, "tier.not_found")
    assert _state() == before


def test_a_receptionist_reads_the_ladder_but_may_not_change_it(reception_api, tiers):
    before = _state()
    gold = tiers["gold"].pk

    listed = reception_api.get(TIERS)
    answers = [
        reception_api.post(TIERS, {**SILVER, "code": "platinum", "threshold": "50000"}, format="json"),
        reception_api.patch(f"{TIERS}{gold}/", {"threshold": "50000.00"}, format="json"),
        reception_api.delete(f"{TIERS}{gold}/"),
    ]

    assert [row["code"] for row in listed.json()["results"]] == ["regular", "silver", "gold", "diamond"]
    assert [(r.status_code, r.json()["code"]) for r in answers] == [(403, "auth.permission_denied")] * 3
    assert _state() == before


def test_a_tier_of_another_organisation_is_not_found(hq_api, tiers):
    from meiye.org.models import Organisation

    other = Organisation.objects.create(name="别家美业", code="other")
    foreign = Tier.objects.create(organisation=other, code="x", name_zh="外", threshold_fen=0)

    assert hq_api.get(f"{TIERS}{foreign.pk}/").status_code == 404
    assert hq_api.patch(f"{TIERS}{foreign.pk}/", {"name_zh": "改"}, format="json").status_code == 404
    assert hq_api.delete(f"{TIERS}{foreign.pk}/").status_code == 404
    assert Tier.objects.get(pk=foreign.pk).name_zh == "外"


def test_a_replayed_create_answers_the_same_and_writes_once(hq_api, tiers):
    body = {**SILVER, "code": "platinum", "name_zh": "铂金", "threshold": "50000.00"}
    first = hq_api.post(TIERS, body, format="json", HTTP_IDEMPOTENCY_KEY="tier-create-1")
    again = hq_api.post(TIERS, body, format="json", HTTP_IDEMPOTENCY_KEY="tier-create-1")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert AuditLog.objects.filter(action="loyalty.tier_save").count() == 5


# --- a member's tier -------------------------------------------------------------------------------------------


def _pay_cash(cashier, member, item, key: str):
    return bill_checkout(
        actor=cashier,
        member=member,
        lines=[LineInput(item_id=item.pk, quantity=1)],
        tenders=[TenderInput(kind="cash", amount=Money(item.price_fen))],
        idempotency_key=key,
    )


@pytest.fixture
def course(hq_actor, ref_categories):
    return item_save(
        actor=hq_actor,
        code="course-1766",
        name="疗程 1766",
        category=ref_categories["basic_care"],
        price=Money.parse("1766.00"),
        duration_minutes=60,
    )


def test_S09_a_members_tier_progress_and_history(reception_api, tiers, member, course, cashier_actor, store1):
    _pay_cash(cashier_actor, member, course, "api-tier-1")
    before = reception_api.get(f"/api/v1/members/{member.pk}/tier/").json()
    _pay_cash(cashier_actor, member, course, "api-tier-2")  # 3,532.00: Silver at once

    after = reception_api.get(f"/api/v1/members/{member.pk}/tier/").json()
    history = reception_api.get(f"/api/v1/members/{member.pk}/tier/history/").json()

    assert before["tier"]["code"] == "regular" and before["earned_tier"] is None
    assert (before["growth"], before["remaining"], before["message_zh"], before["message_en"]) == (
        "1766.00",
        "1234.00",
        "距离银卡还差 ¥1,234",
        "¥1,234 to Silver",
    )
    today = local_today(store1).isoformat()
    assert after == {
        "member_id": member.pk,
        "tier": {"id": tiers["silver"].pk, "code": "silver", "name_zh": "银卡", "name_en": "Silver"},
        "since": today,
        "earned_tier": {"id": tiers["silver"].pk, "code": "silver", "name_zh": "银卡", "name_en": "Silver"},
        "earned_since": today,
        "granted_tier": None,
        "granted_until": None,
        "review_on": after["review_on"],
        "growth": "3532.00",
        "growth_fen": 353_200,
        "next_tier": {"id": tiers["gold"].pk, "code": "gold", "name_zh": "金卡", "name_en": "Gold"},
        "remaining": "6468.00",
        "remaining_fen": 646_800,
        "message_zh": "距离金卡还差 ¥6,468",
        "message_en": "¥6,468 to Gold",
    }
    assert after["review_on"] > today
    assert history["count"] == 1
    (change,) = history["results"]
    assert (change["from_tier"]["code"], change["to_tier"]["code"], change["cause"]) == ("regular", "silver", "bill")
    assert (change["growth"], change["on"], change["staff"]["id"]) == ("3532.00", today, cashier_actor.staff.pk)


def test_without_tiers_the_member_has_none(reception_api, member):
    body = reception_api.get(f"/api/v1/members/{member.pk}/tier/").json()

    assert (body["tier"], body["next_tier"], body["message_zh"], body["growth"]) == (None, None, "", "0.00")


def test_a_manager_grants_a_tier_by_hand(manager_api, manager, tiers, member, store1):
    until = (local_today(store1) + timedelta(days=30)).isoformat()

    response = manager_api.post(
        f"/api/v1/members/{member.pk}/tier/grant/",
        {"tier_id": tiers["gold"].pk, "until": until, "reason": "店庆赠送"},
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["tier"]["code"], body["granted_tier"]["code"], body["granted_until"]) == ("gold", "gold", until)
    assert body["earned_tier"]["code"] == "regular"
    assert body["message_zh"] == "距离钻石还差 ¥30,000"
    change = TierChange.objects.get()
    assert (change.cause, change.note, change.staff_id) == ("grant", "店庆赠送", manager.pk)
    assert AuditLog.objects.filter(action="loyalty.tier_grant").count() == 1


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"until": "2000-01-01"}, 400, "tier.invalid_until", "until"),
        ({"reason": " "}, 400, "input.invalid", "reason"),
        ({"tier_id": 999999}, 400, "tier.invalid_tier", "tier_id"),
        ({"until": "next year"}, 400, "input.invalid", None),
    ],
)
def test_grant_refusals_change_nothing(manager_api, tiers, member, body, status, code, field):
    before = _state()
    sent = {"tier_id": tiers["gold"].pk, "until": "2099-12-31", "reason": "补偿", **body}

    response = manager_api.post(f"/api/v1/members/{member.pk}/tier/grant/", sent, format="json")

    assert response.status_code == status
    assert response.json()["code"] == code
    if field is not None:
        assert response.json()["field"] == field
    assert _state() == before


def test_a_receptionist_may_not_grant_and_other_stores_members_are_404(
    reception_api, client_for, receptionist2, tiers, member
):
    before = _state()
    sent = {"tier_id": tiers["gold"].pk, "until": "2099-12-31", "reason": "补偿"}

    refused = reception_api.post(f"/api/v1/members/{member.pk}/tier/grant/", sent, format="json")
    other = client_for(receptionist2)

    assert (refused.status_code, refused.json()["code"]) == (403, "auth.permission_denied")
    assert other.get(f"/api/v1/members/{member.pk}/tier/").status_code == 404
    assert other.get(f"/api/v1/members/{member.pk}/tier/history/").status_code == 404
    assert _state() == before


def test_an_inactive_member_is_not_granted_a_tier(manager_api, tiers, member):
    type(member).objects.filter(pk=member.pk).update(status="inactive")
    before = _state()
    sent = {"tier_id": tiers["gold"].pk, "until": "2099-12-31", "reason": "补偿"}

    response = manager_api.post(f"/api/v1/members/{member.pk}/tier/grant/", sent, format="json")

    assert (response.status_code, response.json()["code"]) == (409, "member.inactive")
    assert _state() == before
