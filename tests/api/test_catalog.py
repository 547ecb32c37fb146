"""Catalogue through the API: categories and items (HQ writes), the acting store's price, barcodes."""

from __future__ import annotations

import pytest

from meiye.audit.models import AuditLog
from meiye.catalog.models import Category, Item, StorePrice

CATEGORIES = "/api/v1/categories/"
ITEMS = "/api/v1/items/"
PROBLEM = "application/problem+json"

CATEGORY = {
    "code": "anti-ageing",
    "name": "抗衰",
    "kind": "service",
    "earning_category": "anti_ageing",
    "commission_category": "service",
}


# --- categories -------------------------------------------------------------------------------------------------


def test_hq_creates_replaces_and_changes_a_category(hq_api):
    created = hq_api.post(CATEGORIES, CATEGORY, format="json")
    replaced = hq_api.post(CATEGORIES, {**CATEGORY, "name": "抗衰老"}, format="json")
    changed = hq_api.patch(f"{CATEGORIES}{created.json()['id']}/", {"order": 3, "is_active": False}, format="json")

    assert created.status_code == 201
    assert created.json() == {
        "id": created.json()["id"],
        "code": "anti-ageing",
        "name": "抗衰",
        "kind": "service",
        "earning_category": "anti_ageing",
        "commission_category": "service",
        "order": 0,
        "is_active": True,
    }
    assert replaced.status_code == 200
    assert replaced.json()["id"] == created.json()["id"]
    assert changed.status_code == 200
    assert (changed.json()["name"], changed.json()["order"], changed.json()["is_active"]) == ("抗衰老", 3, False)
    assert Category.objects.count() == 1
    assert hq_api.get(CATEGORIES).json()["count"] == 0
    assert hq_api.get(CATEGORIES, {"include_inactive": "true"}).json()["count"] == 1


def test_a_receptionist_reads_but_may_not_change_categories(reception_api, ref_categories):
    listed = reception_api.get(CATEGORIES).json()
    refused = reception_api.post(CATEGORIES, {**CATEGORY, "code": "new"}, format="json")
    patch = reception_api.patch(f"{CATEGORIES}{ref_categories['retail'].pk}/", {"name": "x"}, format="json")

    assert [row["code"] for row in listed["results"]] == ["basic-care", "anti-ageing", "retail"]
    assert refused.status_code == 403
    assert refused["Content-Type"] == PROBLEM
    assert refused.json()["code"] == "auth.permission_denied"
    assert patch.status_code == 403
    assert Category.objects.count() == 3


def test_category_input_errors(hq_api):
    bad_code = hq_api.post(CATEGORIES, {**CATEGORY, "code": "Bad Code"}, format="json")
    bad_kind = hq_api.post(CATEGORIES, {**CATEGORY, "kind": "card"}, format="json")
    too_long = hq_api.post(CATEGORIES, {**CATEGORY, "code": "a" * 33}, format="json")  # the column holds 32
    missing = hq_api.get(f"{CATEGORIES}999999/")

    assert (bad_code.status_code, bad_code.json()["code"], bad_code.json()["field"]) == (
        400,
        "catalog.invalid_code",
        "code",
    )
    assert (bad_kind.status_code, bad_kind.json()["code"], bad_kind.json()["field"]) == (400, "input.invalid", "kind")
    assert (too_long.status_code, too_long.json()["code"], too_long.json()["field"]) == (400, "input.invalid", "code")
    assert (missing.status_code, missing.json()["code"]) == (404, "catalog.category_not_found")
    assert Category.objects.count() == 0


# --- items ------------------------------------------------------------------------------------------------------


def test_hq_creates_and_changes_an_item_with_prices_as_strings(hq_api, ref_categories):
    body = {
        "code": "hydra-facial",
        "name": "水光补水",
        "category_id": ref_categories["basic_care"].pk,
        "price": "680.00",
        "duration_minutes": 60,
    }

    created = hq_api.post(ITEMS, body, format="json")
    changed = hq_api.patch(f"{ITEMS}{created.json()['id']}/", {"price": "698.5"}, format="json")

    assert created.status_code == 201, created.json()
    item = created.json()
    assert (item["code"], item["kind"], item["category"]["code"]) == ("hydra-facial", "service", "basic-care")
    assert (item["list_price"], item["list_price_fen"], item["store_price"]) == ("680.00", 68_000, "680.00")
    assert item["has_store_price"] is False
    assert changed.status_code == 200
    assert (changed.json()["list_price"], changed.json()["name"], changed.json()["duration_minutes"]) == (
        "698.50",
        "水光补水",
        60,
    )
    assert Item.objects.get().price_fen == 69_850
    assert AuditLog.objects.filter(action="catalog.item_update").count() == 1


@pytest.mark.parametrize(
    ("price", "code"),
    [(680, "money.invalid_amount"), ("680.001", "money.invalid_amount"), ("-1.00", "catalog.negative_price")],
)
def test_a_bad_price_is_a_400_naming_the_field(hq_api, ref_categories, price, code):
    body = {"code": "x", "name": "X", "category_id": ref_categories["retail"].pk, "price": price}

    response = hq_api.post(ITEMS, body, format="json")

    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == (code, "price")
    assert Item.objects.count() == 0


def test_an_item_in_an_unknown_category_is_refused(hq_api):
    response = hq_api.post(ITEMS, {"code": "x", "name": "X", "category_id": 999_999, "price": "1.00"}, format="json")

    assert (response.status_code, response.json()["code"], response.json()["field"]) == (
        400,
        "catalog.invalid_category",
        "category_id",
    )


def test_items_list_searches_filters_and_refuses_an_unknown_kind(reception_api, care, lifting, serum):
    everything = reception_api.get(ITEMS).json()
    products = reception_api.get(ITEMS, {"kind": "product"}).json()
    by_name = reception_api.get(ITEMS, {"q": "护理"}).json()
    by_barcode = reception_api.get(ITEMS, {"q": "6901234567890"}).json()
    bad_kind = reception_api.get(ITEMS, {"kind": "card"})

    assert [(row["name"], row["store_price"]) for row in everything["results"]] == [
        ("基础护理", "600.00"),
        ("抗衰紧致", "1000.00"),
        ("精华液", "250.00"),
    ]
    assert [row["id"] for row in products["results"]] == [serum.pk]
    assert [row["id"] for row in by_name["results"]] == [care.pk]
    assert [row["id"] for row in by_barcode["results"]] == [serum.pk]
    assert bad_kind.status_code == 400
    assert (bad_kind.json()["code"], bad_kind.json()["field"]) == ("input.invalid_choice", "kind")


def test_a_product_by_barcode(reception_api, serum):
    found = reception_api.get(f"{ITEMS}barcode/6901234567890/")
    missing = reception_api.get(f"{ITEMS}barcode/0000000000000/")

    assert found.status_code == 200
    assert (found.json()["id"], found.json()["unit"], found.json()["store_price"]) == (serum.pk, "瓶", "250.00")
    assert missing.status_code == 404
    assert missing.json()["code"] == "catalog.item_not_found"


# --- store prices -------------------------------------------------------------------------------------------------


def test_a_store_manager_sets_and_clears_her_store_price(manager_api, hq_api, care, store1, store2):
    url = f"/api/v1/stores/{store1.pk}/prices/{care.pk}/"

    set_ = manager_api.put(url, {"price": "580.00"}, format="json")
    in_store1 = hq_api.get(f"{ITEMS}{care.pk}/", HTTP_X_STORE_ID=str(store1.pk)).json()
    in_store2 = hq_api.get(f"{ITEMS}{care.pk}/", HTTP_X_STORE_ID=str(store2.pk)).json()

    assert set_.status_code == 200
    assert set_.json() == {
        "store_id": store1.pk,
        "item_id": care.pk,
        "price": "580.00",
        "list_price": "600.00",
        "effective_price": "580.00",
    }
    assert (in_store1["store_price"], in_store1["has_store_price"], in_store1["store_id"]) == (
        "580.00",
        True,
        store1.pk,
    )
    assert (in_store2["store_price"], in_store2["has_store_price"]) == ("600.00", False)

    cleared = manager_api.delete(url)
    assert cleared.status_code == 200
    assert (cleared.json()["price"], cleared.json()["effective_price"]) == (None, "600.00")
    assert StorePrice.objects.count() == 0


def test_store_prices_are_scoped_and_need_the_permission(manager_api, reception_api, care, store1, store2):
    other_store = manager_api.put(f"/api/v1/stores/{store2.pk}/prices/{care.pk}/", {"price": "1.00"}, format="json")
    receptionist = reception_api.put(f"/api/v1/stores/{store1.pk}/prices/{care.pk}/", {"price": "1.00"}, format="json")
    bad_amount = manager_api.put(f"/api/v1/stores/{store1.pk}/prices/{care.pk}/", {"price": 1}, format="json")

    assert (other_store.status_code, other_store.json()["code"]) == (404, "store.not_found")
    assert (receptionist.status_code, receptionist.json()["code"]) == (403, "auth.permission_denied")
    assert (bad_amount.status_code, bad_amount.json()["code"], bad_amount.json()["field"]) == (
        400,
        "money.invalid_amount",
        "price",
    )
    assert StorePrice.objects.count() == 0
