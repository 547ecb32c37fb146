"""The cards API: list, issue, lookup, status changes, replace with a fee, close, transfer, import, codes,
the payment password (never returned) and the store's card settings."""

from __future__ import annotations

import pytest

from meiye.cards.models import CardStatus, MemberCard, PaymentPassword
from meiye.cards.services import card_issue
from meiye.ledger.models import Journal

JSON = "json"


@pytest.fixture
def api(api_for, receptionist, store1):
    return api_for(receptionist, HTTP_X_STORE_ID=str(store1.pk))


@pytest.fixture
def boss_api(api_for, manager, store1):
    return api_for(manager, HTTP_X_STORE_ID=str(store1.pk))


@pytest.fixture
def hq_api(api_for, hq_admin, store1):
    return api_for(hq_admin, HTTP_X_STORE_ID=str(store1.pk))


def test_issue_list_and_lookup(api, member, product):
    response = api.post(
        f"/api/v1/members/{member.pk}/cards/",
        {"medium": "physical", "number": "MY00012345", "product_id": product.pk},
        format=JSON,
        HTTP_IDEMPOTENCY_KEY="issue-1",
    )
    assert response.status_code == 201, response.json()
    card = response.json()
    assert card["number"] == "MY00012345" and card["status"] == "active" and card["product"]["code"] == "gold"

    listed = api.get(f"/api/v1/members/{member.pk}/cards/").json()
    assert [c["number"] for c in listed["cards"]] == ["MY00012345"]
    assert listed["has_password"] is False and listed["auth_required"] is False

    found = api.get("/api/v1/cards/lookup/", {"number": "my00012345"})
    assert found.status_code == 200 and found.json()["id"] == card["id"]
    missing = api.get("/api/v1/cards/lookup/", {"number": "NOPE1"})
    assert missing.status_code == 404 and missing.json()["code"] == "card.not_found"
    assert missing["Content-Type"].startswith("application/problem+json")


def test_issue_requires_an_idempotency_key(api, member):
    response = api.post(f"/api/v1/members/{member.pk}/cards/", {}, format=JSON)
    assert response.status_code == 400 and response.json()["code"] == "idempotency.key_required"
    assert not MemberCard.objects.exists()


def test_member_of_another_store_is_404(api_for, receptionist2, store2, member):
    other = api_for(receptionist2, HTTP_X_STORE_ID=str(store2.pk))
    assert other.get(f"/api/v1/members/{member.pk}/cards/").status_code == 404


def test_lost_then_replace_with_fee(api, hq_api, cashier, member, store1):
    card = card_issue(actor=cashier, member=member, idempotency_key="k1")
    settings = hq_api.put(
        f"/api/v1/stores/{store1.pk}/card-settings/",
        {"replacement_fee": "10.00", "allow_balance_transfer": False, "require_payment_auth": False},
        format=JSON,
    )
    assert settings.status_code == 200 and settings.json()["replacement_fee"] == "10.00"
    lost = api.post(f"/api/v1/cards/{card.pk}/lost/", {"reason": "丢了"}, format=JSON)
    assert lost.status_code == 200 and lost.json()["status"] == "lost"

    refused = api.post(f"/api/v1/cards/{card.pk}/replace/", {}, format=JSON, HTTP_IDEMPOTENCY_KEY="rep-1")
    assert refused.status_code == 400 and refused.json()["code"] == "cards.fee_tender_required"
    replaced = api.post(
        f"/api/v1/cards/{card.pk}/replace/", {"fee_tender": "wechat"}, format=JSON, HTTP_IDEMPOTENCY_KEY="rep-1"
    )
    assert replaced.status_code == 201, replaced.json()
    again = api.post(
        f"/api/v1/cards/{card.pk}/replace/", {"fee_tender": "wechat"}, format=JSON, HTTP_IDEMPOTENCY_KEY="rep-1"
    )
    assert again.json()["id"] == replaced.json()["id"]
    assert Journal.objects.filter(code="cards.replace_fee").count() == 1
    old = api.get("/api/v1/cards/lookup/", {"number": card.number})
    assert old.status_code == 400 and old.json()["code"] == "card.replaced"
    assert old.json()["extra"]["replaced_by"] == replaced.json()["number"]


def test_freeze_needs_a_reason_and_unfreeze(api, cashier, member):
    card = card_issue(actor=cashier, member=member, idempotency_key="k1")
    response = api.post(f"/api/v1/cards/{card.pk}/freeze/", {}, format=JSON)
    assert response.status_code == 400 and response.json()["field"] == "reason"
    assert (
        api.post(f"/api/v1/cards/{card.pk}/freeze/", {"reason": "会员要求"}, format=JSON).json()["status"] == "frozen"
    )
    assert api.post(f"/api/v1/cards/{card.pk}/unfreeze/", {"reason": "好了"}, format=JSON).json()["status"] == "active"


def test_bind(api, cashier, member):
    card = card_issue(actor=cashier, member=member, idempotency_key="k1")
    response = api.post(f"/api/v1/cards/{card.pk}/bind/", {"number": "P-0001"}, format=JSON)
    assert response.status_code == 200 and response.json()["number"] == "P-0001"


def test_close_and_transfer(boss_api, hq_api, cashier, member, make_member, store1, recharge):
    card = card_issue(actor=cashier, member=member, idempotency_key="k1")
    friend = make_member(store1)
    recharge(member, "300.00")
    refused = boss_api.post(
        f"/api/v1/cards/{card.pk}/transfer/",
        {"target_member_id": friend.pk, "reason": "转赠"},
        format=JSON,
        HTTP_IDEMPOTENCY_KEY="t1",
    )
    assert refused.status_code == 403 and refused.json()["code"] == "card.transfer_not_allowed"
    hq_api.put(
        f"/api/v1/stores/{store1.pk}/card-settings/",
        {"replacement_fee": "0.00", "allow_balance_transfer": True, "require_payment_auth": False},
        format=JSON,
    )
    moved = boss_api.post(
        f"/api/v1/cards/{card.pk}/transfer/",
        {"target_member_id": friend.pk, "reason": "转赠"},
        format=JSON,
        HTTP_IDEMPOTENCY_KEY="t2",
    )
    assert moved.status_code == 200, moved.json()
    assert moved.json()["target_member_id"] == friend.pk

    closed = boss_api.post(
        f"/api/v1/cards/{card.pk}/close/", {"tender": "cash", "reason": "退卡"}, format=JSON, HTTP_IDEMPOTENCY_KEY="c1"
    )
    assert closed.status_code == 200, closed.json()
    assert closed.json()["card"]["status"] == "closed" and closed.json()["principal_refunded"] is None


def test_import_dry_run_reports_rows_then_real_import_refuses_bad_rows(api, member, product):
    bad = api.post("/api/v1/cards/import/", {"csv": "OLD-1,13800135678,gold\nOLD-2,19900000000,gold\n"}, format=JSON)
    assert bad.status_code == 200
    body = bad.json()
    assert body["ok"] is False and body["errors"][0]["line"] == 2 and body["errors"][0]["column"] == "member"
    real = api.post(
        "/api/v1/cards/import/",
        {"csv": "OLD-1,13800135678,gold\nOLD-2,19900000000,gold\n", "dry_run": False},
        format=JSON,
    )
    assert real.status_code == 400 and real.json()["code"] == "cards.import_invalid"
    assert real.json()["extra"]["errors"][0]["line"] == 2
    good = api.post("/api/v1/cards/import/", {"csv": "OLD-1,13800135678,gold\n", "dry_run": False}, format=JSON)
    assert good.status_code == 200 and good.json()["cards_created"] == 1 and good.json()["aliases_created"] == 1


def test_code_and_password_never_come_back(api, member, codes):
    sent = api.post(f"/api/v1/members/{member.pk}/payment-code/", {"purpose": "password"}, format=JSON)
    assert sent.status_code == 201 and codes.last not in sent.content.decode()
    too_soon = api.post(f"/api/v1/members/{member.pk}/payment-code/", {"purpose": "password"}, format=JSON)
    assert too_soon.status_code == 400 and too_soon.json()["code"] == "cards.code_too_soon"
    trivial = api.post(
        f"/api/v1/members/{member.pk}/payment-password/", {"password": "123456", "code": codes.last}, format=JSON
    )
    assert trivial.status_code == 400 and trivial.json()["code"] == "cards.password_trivial"
    done = api.post(
        f"/api/v1/members/{member.pk}/payment-password/", {"password": "135790", "code": codes.last}, format=JSON
    )
    assert done.status_code == 204 and done.content == b""
    assert PaymentPassword.objects.get(member=member).is_set
    listed = api.get(f"/api/v1/members/{member.pk}/cards/").json()
    assert listed["has_password"] is True and listed["auth_required"] is True
    assert "135790" not in str(listed)


def test_settings_need_store_manage(api, store1):
    response = api.put(
        f"/api/v1/stores/{store1.pk}/card-settings/",
        {"replacement_fee": "10.00", "allow_balance_transfer": False, "require_payment_auth": False},
        format=JSON,
    )
    assert response.status_code == 403
    assert api.get(f"/api/v1/stores/{store1.pk}/card-settings/").json()["replacement_fee"] == "0.00"


def test_card_status_is_a_plain_string(api, cashier, member):
    card = card_issue(actor=cashier, member=member, idempotency_key="k1")
    assert api.get("/api/v1/cards/lookup/", {"number": card.number}).json()["status"] == CardStatus.ACTIVE
