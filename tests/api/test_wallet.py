"""Stored value and points through the API: balances, movements, lots, recharging, scoping."""

from __future__ import annotations

from datetime import date

import pytest

from meiye.core.models import IdempotencyRecord
from meiye.core.money import Money
from meiye.loyalty.services import add_months
from meiye.wallet.models import Recharge
from meiye.wallet.services import wallet_recharge
from tests.ledger.support import ledger_state

PROBLEM = "application/problem+json"


def _wallet(member) -> str:
    return f"/api/v1/members/{member.pk}/wallet/"


def _recharge(client, member, body, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(_wallet(member) + "recharge/", body, format="json", **headers)


RECHARGE = {"amount": "3000.00", "bonus": "100.00", "tender": "wechat", "external_ref": "wx-3000"}


def test_recharge_3000_with_bonus_100(manager_api, reception_api, shopper, store1):
    # when
    response = _recharge(manager_api, shopper, RECHARGE, key="rc-1")

    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["member_id"], body["store"]["id"], body["tender"], body["external_ref"]) == (
        shopper.pk,
        store1.pk,
        "wechat",
        "wx-3000",
    )
    assert (body["amount"], body["bonus"]) == ("3000.00", "100.00")
    assert body["wallet"] == {
        "member_id": shopper.pk,
        "principal": "3000.00",
        "bonus": "100.00",
        "total": "3100.00",
        "principal_fen": 300_000,
        "bonus_fen": 10_000,
        "total_fen": 310_000,
        "pending": "0.00",
        "pending_fen": 0,
    }
    assert reception_api.get(_wallet(shopper)).json() == body["wallet"]
    history = reception_api.get(_wallet(shopper) + "history/").json()
    assert history["count"] == 1
    line = history["results"][0]
    assert (line["code"], line["reference_type"], line["reference_id"]) == (
        "wallet.recharge",
        "wallet.Recharge",
        str(body["id"]),
    )
    assert (line["principal"], line["bonus"], line["total"]) == ("3000.00", "100.00", "3100.00")
    assert (line["principal_after"], line["bonus_after"]) == ("3000.00", "100.00")
    assert line["journal_id"] == body["journal_id"]
    # a recharge earns neither points nor growth
    points = reception_api.get(f"/api/v1/members/{shopper.pk}/points/").json()
    assert points == {"member_id": shopper.pk, "points": 0, "growth": "0.00", "growth_fen": 0}


def test_a_recharge_without_bonus_defaults_to_zero(manager_api, reception_api, shopper):
    response = _recharge(manager_api, shopper, {"amount": "500", "tender": "cash"}, key="rc-cash")

    assert response.status_code == 201
    assert (response.json()["amount"], response.json()["bonus"]) == ("500.00", "0.00")


def test_a_recharge_is_idempotent(manager_api, reception_api, shopper):
    first = _recharge(manager_api, shopper, RECHARGE, key="rc-1")
    state = ledger_state()
    second = _recharge(manager_api, shopper, RECHARGE, key="rc-1")
    conflict = _recharge(manager_api, shopper, {**RECHARGE, "amount": "2000.00"}, key="rc-1")

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert (conflict.status_code, conflict.json()["code"]) == (409, "idempotency.key_reused")
    assert Recharge.objects.count() == 1
    assert ledger_state() == state
    assert reception_api.get(_wallet(shopper)).json()["principal"] == "3000.00"


def test_the_recharge_key_is_the_recharge_own_key(manager_api, reception_api, shopper, hq_actor):
    # given: a recharge at the front desk with key "desk-rc" (no HTTP record)
    wallet_recharge(
        actor=hq_actor,
        member=shopper,
        amount=Money.parse("3000.00"),
        bonus=Money.parse("100.00"),
        tender="wechat",
        external_ref="wx-3000",
        idempotency_key="desk-rc",
    )
    state = ledger_state()

    # when: the API is sent the same recharge with the same key, then a different one
    same = _recharge(manager_api, shopper, RECHARGE, key="desk-rc")
    other = _recharge(manager_api, shopper, {**RECHARGE, "bonus": "0.00"}, key="desk-rc")

    # then: the service answers its first recharge; the different request is refused; nothing written
    assert same.status_code == 201
    assert same.json()["wallet"]["principal"] == "3000.00"
    assert (other.status_code, other.json()["code"]) == (409, "idempotency.key_reused")
    assert Recharge.objects.count() == 1
    assert ledger_state() == state


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({**RECHARGE, "amount": 3000}, "money.invalid_amount", "amount"),
        ({**RECHARGE, "amount": "3000.001"}, "money.invalid_amount", "amount"),
        ({**RECHARGE, "bonus": "ten"}, "money.invalid_amount", "bonus"),
        ({**RECHARGE, "amount": "0.00"}, "wallet.invalid_amount", "amount"),
        ({**RECHARGE, "bonus": "-1.00"}, "wallet.invalid_amount", "bonus"),
        ({**RECHARGE, "tender": "stored_value"}, "input.invalid", "tender"),
        ({"tender": "cash"}, "input.invalid", "amount"),
    ],
)
def test_bad_recharges_are_refused_naming_the_field(manager_api, reception_api, shopper, body, code, field):
    state = ledger_state()

    response = _recharge(manager_api, shopper, body, key="bad")

    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert (response.json()["code"], response.json()["field"]) == (code, field)
    assert Recharge.objects.count() == 0
    assert ledger_state() == state
    assert IdempotencyRecord.objects.count() == 0


def test_a_recharge_requires_an_idempotency_key(manager_api, reception_api, shopper):
    response = _recharge(manager_api, shopper, RECHARGE)

    assert response.status_code == 400
    assert response.json()["code"] == "idempotency.key_required"
    assert Recharge.objects.count() == 0


def test_a_beautician_may_see_but_not_recharge(client_for, beautician, shopper):
    api = client_for(beautician)

    seen = api.get(_wallet(shopper))
    refused = _recharge(api, shopper, RECHARGE, key="b-1")

    assert seen.status_code == 200
    assert (refused.status_code, refused.json()["code"]) == (403, "auth.permission_denied")
    assert Recharge.objects.count() == 0


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "wallet/", None),
        ("get", "wallet/history/", None),
        ("post", "wallet/recharge/", RECHARGE),
        ("get", "points/", None),
        ("get", "points/lots/", None),
        ("get", "points/history/", None),
    ],
)
def test_a_store2_member_is_not_found_from_store1(reception_api, shopper2, top_up, method, suffix, body):
    state = ledger_state()

    response = getattr(reception_api, method)(
        f"/api/v1/members/{shopper2.pk}/{suffix}", body, format="json", HTTP_IDEMPOTENCY_KEY="x"
    )

    assert response.status_code == 404
    assert response.json()["code"] == "member.not_found"
    assert Recharge.objects.count() == 0
    assert ledger_state() == state


def test_hq_recharges_a_store2_member_in_the_acting_store(hq_api, shopper2, store1, store2):
    default = _recharge(hq_api, shopper2, RECHARGE, key="hq-1")
    in_store2 = hq_api.post(
        _wallet(shopper2) + "recharge/",
        {**RECHARGE, "external_ref": "wx-2"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="hq-2",
        HTTP_X_STORE_ID=str(store2.pk),
    )

    assert default.status_code == in_store2.status_code == 201
    assert default.json()["store"]["id"] == store1.pk  # HQ's default acting store: the first active one
    assert in_store2.json()["store"]["id"] == store2.pk
    assert in_store2.json()["wallet"]["principal"] == "6000.00"


# --- points ---------------------------------------------------------------------------------------------------


def test_points_balance_lots_and_history_after_a_bill(reception_api, shopper, care, serum, gift_points):
    # given: 300 points from an opening gift, then a cash bill of basic care 600.00 and a serum 250.00
    gift_points(shopper, 300)
    bill = reception_api.post(
        "/api/v1/bills/checkout/",
        {
            "member_id": shopper.pk,
            "lines": [{"item_id": care.pk}, {"item_id": serum.pk}],
            "tenders": [{"kind": "cash", "amount": "850.00"}],
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY="pts-bill",
    ).json()

    # when
    points = reception_api.get(f"/api/v1/members/{shopper.pk}/points/").json()
    lots = reception_api.get(f"/api/v1/members/{shopper.pk}/points/lots/").json()
    history = reception_api.get(f"/api/v1/members/{shopper.pk}/points/history/").json()

    # then: 600 × 1 + 250 × 2 = 1,100 earned
    assert points == {"member_id": shopper.pk, "points": 1400, "growth": "850.00", "growth_fen": 85_000}
    assert [(lot["source_code"], lot["amount"], lot["remaining"]) for lot in lots["results"]] == [
        ("test.opening", 300, 300),
        ("sales.bill", 1100, 1100),
    ]
    lot = lots["results"][1]
    assert lot["expires_on"] == add_months(date.fromisoformat(lot["earned_on"]), 12).isoformat()
    assert [
        (line["code"], line["points"], line["balance_after"], line["reference_type"], line["reference_id"])
        for line in history["results"]
    ] == [
        ("points.earn", 1100, 1400, "sales.Bill", str(bill["id"])),
        ("points.earn", 300, 300, "test", "opening"),
    ]


def test_a_receptionist_cannot_give_a_bonus_by_hand(reception_api, shopper):
    before = ledger_state()
    response = _recharge(reception_api, shopper, RECHARGE, key="rc-bonus")
    assert response.status_code == 403
    assert response.json()["code"] == "wallet.bonus_not_allowed"
    assert response.json()["field"] == "bonus"
    assert ledger_state() == before


# --- card products, recharge rules, preview, instalments, refunds (issue 5) -------------------------------


def _setup_s13(hq_api) -> tuple[int, int]:
    product = hq_api.post(
        "/api/v1/card-products/",
        {"code": "standard", "name": "储值卡", "named_cap": "50000.00", "is_default": True},
        format="json",
    )
    assert product.status_code == 201, product.json()
    body = product.json()
    assert (body["named_cap"], body["anonymous_cap"], body["cooling_off_days"]) == ("50000.00", None, 7)
    rule = hq_api.post(
        f"/api/v1/card-products/{body['id']}/rules/",
        {"threshold": "3000.00", "bonus": "600.00", "instalments": 6, "bonus_points": 300},
        format="json",
    )
    assert rule.status_code == 201, rule.json()
    assert (rule.json()["threshold"], rule.json()["bonus"], rule.json()["instalments"]) == ("3000.00", "600.00", 6)
    return body["id"], rule.json()["id"]


def test_card_products_and_rules_crud(hq_api, reception_api):
    product_id, rule_id = _setup_s13(hq_api)
    assert [p["code"] for p in reception_api.get("/api/v1/card-products/").json()["results"]] == ["standard"]
    changed = hq_api.put(
        f"/api/v1/card-products/{product_id}/",
        {"code": "standard", "name": "标准储值卡", "named_cap": None, "cooling_off_days": 10},
        format="json",
    )
    assert changed.status_code == 200, changed.json()
    assert (changed.json()["name"], changed.json()["named_cap"], changed.json()["cooling_off_days"]) == (
        "标准储值卡",
        None,
        10,
    )
    off = hq_api.put(
        f"/api/v1/card-products/{product_id}/rules/{rule_id}/",
        {"threshold": "3000.00", "bonus": "600.00", "instalments": 6, "active": False},
        format="json",
    )
    assert off.status_code == 200 and off.json()["active"] is False
    rules = reception_api.get(f"/api/v1/card-products/{product_id}/rules/").json()["results"]
    assert [r["id"] for r in rules] == [rule_id]
    # a receptionist may read but not change them
    refused = reception_api.post("/api/v1/card-products/", {"code": "x", "name": "x"}, format="json")
    assert refused.status_code == 403 and refused["Content-Type"] == PROBLEM
    assert hq_api.get("/api/v1/card-products/999999/").status_code == 404


def test_preview_recharge_with_rule_instalments_and_refund(hq_api, reception_api, manager_api, shopper):
    _setup_s13(hq_api)
    preview = reception_api.get(f"/api/v1/members/{shopper.pk}/wallet/recharge/preview/?amount=3000.00")
    assert preview.status_code == 200, preview.json()
    body = preview.json()
    assert body["text_zh"] == "充3000送600：立即到账 100.00，另 500.00 分 5 个月到账，送 300 积分"
    assert (body["now"], body["pending"], body["points"], len(body["later"])) == ("100.00", "500.00", 300, 5)

    response = _recharge(reception_api, shopper, {"amount": "3000.00", "tender": "wechat"}, key="rc-s13")
    assert response.status_code == 201, response.json()
    recharge = response.json()
    assert (recharge["bonus"], recharge["pending_bonus"], recharge["bonus_points"]) == ("100.00", "500.00", 300)
    assert (recharge["wallet"]["pending"], recharge["wallet"]["total"]) == ("500.00", "3100.00")
    assert recharge["contract_id"] is not None

    instalments = reception_api.get(f"/api/v1/members/{shopper.pk}/wallet/instalments/?pending=1").json()
    assert [(i["seq"], i["amount"], i["status"]) for i in instalments["results"]] == [
        (k, "100.00", "pending") for k in range(2, 7)
    ]

    url = f"/api/v1/members/{shopper.pk}/wallet/recharges/{recharge['id']}/refund/"
    refused = reception_api.post(url, {"tender": "wechat", "reason": "反悔"}, format="json", HTTP_IDEMPOTENCY_KEY="r1")
    assert refused.status_code == 403
    refunded = manager_api.post(url, {"tender": "wechat", "reason": "反悔"}, format="json", HTTP_IDEMPOTENCY_KEY="r1")
    assert refunded.status_code == 200, refunded.json()
    assert refunded.json()["refunded_at"] is not None
    assert refunded.json()["wallet"]["total"] == "0.00" and refunded.json()["wallet"]["pending"] == "0.00"
    again = manager_api.post(url, {"tender": "wechat", "reason": "反悔"}, format="json", HTTP_IDEMPOTENCY_KEY="r2")
    assert again.status_code == 409 and again.json()["code"] == "wallet.recharge_refunded"


def test_cap_exceeded_is_a_problem_naming_amount(hq_api, reception_api, shopper):
    product_id, _rule = _setup_s13(hq_api)
    hq_api.put(
        f"/api/v1/card-products/{product_id}/",
        {"code": "standard", "name": "储值卡", "named_cap": "5000.00", "is_default": True},
        format="json",
    )
    assert _recharge(reception_api, shopper, {"amount": "4000.00", "tender": "cash"}, key="a").status_code == 201
    before = ledger_state()
    response = _recharge(reception_api, shopper, {"amount": "1500.00", "tender": "cash"}, key="b")
    assert response.status_code in (400, 409, 422)
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert (body["code"], body["field"]) == ("wallet.cap_exceeded", "amount")
    assert (body["extra"]["cap"], body["extra"]["room"]) == ("5000.00", "1000.00")
    assert ledger_state() == before


def test_close_and_transfer(hq_api, manager_api, reception_api, shopper, make_member, store1, hq_admin, actor_for):
    from meiye.cards.services import card_issue, card_settings_set

    _setup_s13(hq_api)
    assert _recharge(reception_api, shopper, {"amount": "3000.00", "tender": "wechat"}, key="a").status_code == 201
    other = make_member(store1)

    def transfer(key):
        return manager_api.post(
            f"/api/v1/members/{shopper.pk}/wallet/transfer/",
            {"target_id": other.pk, "reason": "转给家人"},
            format="json",
            HTTP_IDEMPOTENCY_KEY=key,
        )

    # a transfer goes through her card, where the store allows it
    assert transfer("t0").json()["code"] == "card.not_found"
    hq = actor_for(hq_admin, store1)
    card_issue(actor=hq, member=shopper, idempotency_key="card")
    assert transfer("t1").json()["code"] == "card.transfer_not_allowed"
    card_settings_set(
        actor=hq, store=store1, replacement_fee=Money(0), allow_balance_transfer=True, require_payment_auth=False
    )
    moved = transfer("t")
    assert moved.status_code == 201, moved.json()
    assert (moved.json()["source"]["total"], moved.json()["target"]["pending"]) == ("0.00", "500.00")
    closed = manager_api.post(
        f"/api/v1/members/{other.pk}/wallet/close/",
        {"tender": "cash", "reason": "退卡"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="c",
    )
    assert closed.status_code == 201, closed.json()
    assert (closed.json()["principal"], closed.json()["bonus_forfeited"], closed.json()["pending_cancelled"]) == (
        "3000.00",
        "100.00",
        "500.00",
    )
