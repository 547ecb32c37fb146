"""The points mall over the API: items, redeem (Idempotency-Key required), approve, reject, history."""

from __future__ import annotations

import pytest

from meiye.loyalty.selectors import points_balance
from meiye.mall.models import MallRedemption
from meiye.mall.selectors import mall_item_stock

ITEMS = "/api/v1/mall/items/"
REDEMPTIONS = "/api/v1/mall/redemptions/"


@pytest.fixture
def reception_api(api_for, receptionist):
    return api_for(receptionist)


@pytest.fixture
def manager_api(api_for, manager):
    return api_for(manager)


def test_S07_points_mall_over_the_api(reception_api, manager_api, member, earn, mask_box, make_item):
    # given
    earn(member, 26_200)
    device = make_item("美容仪", 20_000, stock=1)

    # the items offered in the acting store, with stock
    listed = reception_api.get(ITEMS).json()["results"]
    assert [(i["name"], i["points_price"], i["stock"], i["held"]) for i in listed] == [
        ("面膜礼盒", 5_000, 3, 0),
        ("美容仪", 20_000, 1, 0),
    ]

    # redeem the gift: 201, completed, 21,200 left, stock 2
    body = {"member_id": member.pk, "item_id": mask_box.pk}
    response = reception_api.post(REDEMPTIONS, body, format="json", HTTP_IDEMPOTENCY_KEY="api-gift")
    assert response.status_code == 201, response.json()
    gift = response.json()
    assert gift["redemption"]["status"] == "completed"
    assert gift["redemption"]["points"] == 5_000
    assert gift["points_balance"] == 21_200
    assert mall_item_stock(mask_box) == 2

    # a retry with the same key is answered from the first time
    again = reception_api.post(REDEMPTIONS, body, format="json", HTTP_IDEMPOTENCY_KEY="api-gift")
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == gift
    assert points_balance(member) == 21_200
    # the same key with another body is 409
    other = reception_api.post(REDEMPTIONS, {**body, "quantity": 2}, format="json", HTTP_IDEMPOTENCY_KEY="api-gift")
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency.key_reused"

    # 20,000 waits with the points held
    pending = reception_api.post(
        REDEMPTIONS, {"member_id": member.pk, "item_id": device.pk}, format="json", HTTP_IDEMPOTENCY_KEY="api-dev"
    ).json()
    assert pending["redemption"]["status"] == "pending"
    assert pending["points_balance"] == 1_200
    pk = pending["redemption"]["id"]

    # a cashier may not reject; the manager rejects and the points come back in full
    refused = reception_api.post(
        f"{REDEMPTIONS}{pk}/reject/", {"reason": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="r0"
    )
    assert refused.status_code == 403
    rejected = manager_api.post(
        f"{REDEMPTIONS}{pk}/reject/", {"reason": "活动库存"}, format="json", HTTP_IDEMPOTENCY_KEY="r1"
    )
    assert rejected.status_code == 200, rejected.json()
    assert rejected.json()["status"] == "rejected"
    assert points_balance(member) == 21_200
    assert mall_item_stock(device) == 1

    # history, newest first; by status
    history = manager_api.get(REDEMPTIONS, {"member_id": member.pk}).json()["results"]
    assert [(h["item_name"], h["status"]) for h in history] == [("美容仪", "rejected"), ("面膜礼盒", "completed")]
    assert [h["id"] for h in manager_api.get(REDEMPTIONS, {"status": "rejected"}).json()["results"]] == [pk]
    assert manager_api.get(f"{REDEMPTIONS}{pk}/").json()["decision_note"] == "活动库存"


def test_redeem_needs_an_idempotency_key_and_refusals_are_problems(reception_api, member, earn, make_item):
    earn(member, 1_000)
    sample = make_item("小样", 300, stock=5)

    without = reception_api.post(REDEMPTIONS, {"member_id": member.pk, "item_id": sample.pk}, format="json")
    assert without.status_code == 400
    assert without.json()["code"] == "idempotency.key_required"

    below = reception_api.post(
        REDEMPTIONS, {"member_id": member.pk, "item_id": sample.pk}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert below.status_code == 400
    assert below.headers["Content-Type"].startswith("application/problem+json")
    assert below.json()["code"] == "mall.below_minimum"
    assert MallRedemption.objects.count() == 0
    assert points_balance(member) == 1_000


def test_approve_over_the_api(reception_api, manager_api, member, earn, make_item):
    earn(member, 20_000)
    device = make_item("美容仪", 20_000, stock=1)
    pk = reception_api.post(
        REDEMPTIONS, {"member_id": member.pk, "item_id": device.pk}, format="json", HTTP_IDEMPOTENCY_KEY="k"
    ).json()["redemption"]["id"]

    approved = manager_api.post(f"{REDEMPTIONS}{pk}/approve/", {"note": "ok"}, format="json", HTTP_IDEMPOTENCY_KEY="a")

    assert approved.status_code == 200, approved.json()
    assert approved.json()["status"] == "completed"
    assert points_balance(member) == 0
    late = manager_api.post(f"{REDEMPTIONS}{pk}/reject/", {"reason": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="b")
    assert late.status_code == 409
    assert late.json()["code"] == "mall.already_decided"


def test_another_store_sees_neither_the_redemption_nor_the_member(
    api_for, receptionist2, reception_api, member, earn, mask_box
):
    earn(member, 6_200)
    pk = reception_api.post(
        REDEMPTIONS, {"member_id": member.pk, "item_id": mask_box.pk}, format="json", HTTP_IDEMPOTENCY_KEY="k"
    ).json()["redemption"]["id"]
    other = api_for(receptionist2)

    assert other.get(f"{REDEMPTIONS}{pk}/").status_code == 404
    assert other.get(REDEMPTIONS).json()["results"] == []
    refused = other.post(
        REDEMPTIONS, {"member_id": member.pk, "item_id": mask_box.pk}, format="json", HTTP_IDEMPOTENCY_KEY="k2"
    )
    assert refused.status_code == 404
    assert refused.json()["code"] == "member.not_found"
    assert points_balance(member) == 1_200
