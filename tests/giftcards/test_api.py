"""Gift cards over the API: sell (codes in the answer only, never in the idempotency store), look up by code in
the body, list (masked), void; permissions and problem+json refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest

from meiye.core.models import IdempotencyRecord
from meiye.giftcards.models import GiftCard
from meiye.ledger.models import Journal
from tests.giftcards.conftest import store_balance

CARDS = "/api/v1/gift-cards/"
LOOKUP = "/api/v1/gift-cards/lookup/"


@pytest.fixture
def reception_api(api_for, receptionist):
    return api_for(receptionist)


@pytest.fixture
def manager_api(api_for, manager):
    return api_for(manager)


def _sell_body(today, **extra):
    return {
        "face": "500.00",
        "price": "450.00",
        "quantity": 2,
        "expires_on": (today + timedelta(days=365)).isoformat(),
        "tender": "wechat",
        **extra,
    }


def test_sell_look_up_list_and_void_over_the_api(reception_api, manager_api, store1, today):
    # sell two 500.00 cards for 450.00 each
    response = reception_api.post(CARDS, _sell_body(today), format="json", HTTP_IDEMPOTENCY_KEY="api-sell")
    assert response.status_code == 201, response.json()
    sold = response.json()
    assert sold["paid"] == "900.00" and sold["tender"] == "wechat"
    assert [(c["face"], c["price"], c["balance"], c["status"]) for c in sold["cards"]] == [
        ("500.00", "450.00", "500.00", "active")
    ] * 2
    codes = [c["code"] for c in sold["cards"]]
    assert all(len(code) == 16 for code in codes)
    assert sold["cards"][0]["masked_code"] == f"****-****-****-{codes[0][-4:]}"
    assert response["Cache-Control"] == "no-store"
    assert store_balance(store1, "tender_wechat") == -90_000
    assert store_balance(store1, "gift_card_discount") == -10_000
    # the codes are nowhere in the idempotency store
    for record in IdempotencyRecord.objects.all():
        assert not any(code in str(record.response) for code in codes)

    # a retry returns the same cards; another body under the key is 409
    again = reception_api.post(CARDS, _sell_body(today), format="json", HTTP_IDEMPOTENCY_KEY="api-sell")
    assert again.status_code == 201 and [c["code"] for c in again.json()["cards"]] == codes
    assert GiftCard.objects.count() == 2
    other = reception_api.post(CARDS, _sell_body(today, quantity=3), format="json", HTTP_IDEMPOTENCY_KEY="api-sell")
    assert other.status_code == 409 and other.json()["code"] == "idempotency.key_reused"

    # look a card up by its code, typed with dashes
    typed = "-".join(codes[0][i : i + 4] for i in range(0, 16, 4)).lower()
    found = reception_api.post(LOOKUP, {"code": typed}, format="json")
    assert found.status_code == 200, found.json()
    card = found.json()
    assert (card["masked_code"], card["balance"], card["uses"]) == (sold["cards"][0]["masked_code"], "500.00", [])
    assert "code" not in card
    missing = reception_api.post(LOOKUP, {"code": "0000-0000-0000-0000"}, format="json")
    assert missing.status_code == 404
    assert missing["Content-Type"].startswith("application/problem+json")
    assert missing.json()["code"] == "giftcard.not_found"

    # the list is masked
    listed = reception_api.get(CARDS, {"status": "active"}).json()["results"]
    assert len(listed) == 2
    assert not any(code in str(listed) for code in codes)

    # a cashier may not void; the manager does, once
    pk = card["id"]
    refused = reception_api.post(f"{CARDS}{pk}/void/", {"reason": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="v0")
    assert refused.status_code == 403
    voided = manager_api.post(f"{CARDS}{pk}/void/", {"reason": "多售"}, format="json", HTTP_IDEMPOTENCY_KEY="v1")
    assert voided.status_code == 200, voided.json()
    assert voided.json()["status"] == "void" and voided.json()["balance"] == "0.00"
    assert store_balance(store1, "tender_wechat") == -45_000
    assert manager_api.get(f"{CARDS}{pk}/").json()["status"] == "void"


def test_sell_needs_an_idempotency_key_and_string_amounts(reception_api, today):
    no_key = reception_api.post(CARDS, _sell_body(today), format="json")
    assert no_key.status_code == 400 and no_key.json()["code"] == "idempotency.key_required"
    numbers = reception_api.post(CARDS, _sell_body(today, face=500), format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert numbers.status_code == 400
    assert (numbers.json()["code"], numbers.json()["field"]) == ("money.invalid_amount", "face")
    too_dear = reception_api.post(CARDS, _sell_body(today, price="500.01"), format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert too_dear.status_code == 400
    assert (too_dear.json()["code"], too_dear.json()["field"]) == ("giftcard.invalid_price", "price")
    assert too_dear.json()["detail_zh"] and too_dear.json()["detail_en"]
    assert not GiftCard.objects.exists() and not Journal.objects.exists()


def test_a_beautician_may_not_sell_look_up_or_list(api_for, beautician, sell, today):
    [card] = sell()
    api = api_for(beautician)
    assert api.post(CARDS, _sell_body(today), format="json", HTTP_IDEMPOTENCY_KEY="b").status_code == 403
    assert api.post(LOOKUP, {"code": card.code}, format="json").status_code == 403
    assert api.get(CARDS).status_code == 403


def test_another_stores_card_is_found_by_code_but_not_listed(api_for, receptionist2, sell):
    [card] = sell()  # sold in store 1
    api = api_for(receptionist2)
    assert api.post(LOOKUP, {"code": card.code}, format="json").status_code == 200  # any store may take it
    assert api.get(CARDS).json()["results"] == []
    assert api.get(f"{CARDS}{card.pk}/").status_code == 404


def test_schema_documents_the_gift_card_endpoints(db):
    from rest_framework.test import APIClient

    schema = APIClient().get("/api/schema/?format=json").json()
    assert {
        f"{method.upper()} {path}" for path, methods in schema["paths"].items() for method in methods if "gift" in path
    } == {
        "GET /api/v1/gift-cards/",
        "POST /api/v1/gift-cards/",
        "POST /api/v1/gift-cards/lookup/",
        "GET /api/v1/gift-cards/{id}/",
        "POST /api/v1/gift-cards/{id}/void/",
    }
