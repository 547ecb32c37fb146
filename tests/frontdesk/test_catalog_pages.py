"""Catalogue settings (categories, services and products for HQ; the store's own prices for store managers) and
the sales entries of the navigation."""

from __future__ import annotations

import re

import pytest

from meiye.catalog.models import Category, Item, StorePrice
from tests.frontdesk.sales_fixtures import *  # noqa: F403
from tests.frontdesk.sales_fixtures import field_errors, sales_state


def _salesnav(content: str) -> list[str]:
    match = re.search(r'<nav class="salesnav"[^>]*>(.*?)</nav>', content, re.S)
    return re.findall(r">([^<>]+)</a>", match.group(1)) if match else []


def test_sales_navigation_follows_permissions(receptionist, manager, beautician, hq_admin, client_for):
    assert _salesnav(client_for(receptionist).get("/members/").content.decode()) == [
        "收银台",
        "消费单",
        "积分商城",
        "礼品卡",
    ]
    assert _salesnav(client_for(manager).get("/members/").content.decode()) == [
        "收银台",
        "消费单",
        "日结",
        "项目与价格",
        "积分商城",
        "礼品卡",
        "预付负债",
    ]
    assert _salesnav(client_for(beautician).get("/members/").content.decode()) == []
    assert _salesnav(client_for(hq_admin, language="en").get("/members/").content.decode()) == [
        "Checkout",
        "Bills",
        "Daily close",
        "Catalogue",
        "Points mall",
        "Gift cards",
        "Prepaid liability",
    ]
    current = client_for(receptionist).get("/bills/").content.decode()
    assert '<a href="/bills/" aria-current="page">' in current


def test_catalogue_index_goes_to_the_first_allowed_page(hq_admin, manager, receptionist, client_for):
    assert client_for(hq_admin).get("/catalog/")["Location"] == "/catalog/items/"
    assert client_for(manager).get("/catalog/")["Location"] == "/catalog/prices/"
    assert client_for(receptionist).get("/catalog/").status_code == 403


def test_hq_creates_and_edits_a_category_and_an_item(hq_admin, client_for):
    client = client_for(hq_admin)

    created = client.post(
        "/catalog/categories/new/",
        {
            "code": "hair",
            "name": "美发",
            "kind": "service",
            "earning_category": "hair",
            "commission_category": "service",
            "order": "3",
            "is_active": "on",
        },
    )
    category = Category.objects.get(code="hair")
    item = client.post(
        "/catalog/items/new/",
        {
            "code": "cut",
            "name": "洗剪吹",
            "category": category.pk,
            "price": "88.00",
            "duration_minutes": "45",
            "is_active": "on",
        },
    )
    edited = client.post(
        f"/catalog/items/{Item.objects.get(code='cut').pk}/",
        {"code": "ignored", "name": "精剪", "category": category.pk, "price": "98", "duration_minutes": "50"},
    )

    assert created.status_code == 302 and created["Location"] == "/catalog/categories/"
    assert item.status_code == 302 and edited.status_code == 302
    saved = Item.objects.get()
    assert (saved.code, saved.name, saved.price_fen, saved.duration_minutes, saved.is_active) == (
        "cut",
        "精剪",
        9_800,
        50,
        False,
    )
    listing = client.get("/catalog/items/").content.decode()
    assert "精剪" in listing and "¥98.00" in listing
    assert "美发" in client.get("/catalog/categories/").content.decode()


@pytest.mark.parametrize(
    ("language", "field", "data", "message"),
    [
        (
            None,
            "duration_minutes",
            {"duration_minutes": ""},
            "时长：服务需要 1 到 1440 分钟的时长。",
        ),
        (
            "en",
            "duration_minutes",
            {"duration_minutes": ""},
            "duration_minutes: a service needs a duration of 1 to 1440 minutes.",
        ),
        (None, "code", {"code": "Bad Code"}, "编码：小写字母或数字开头，只含小写字母、数字、- 和 _，最多 40 个字符。"),
        (None, "price", {"price": "-5"}, "价格：不能为负数。"),
    ],
)
def test_item_errors_beside_their_field(hq_admin, catalogue, client_for, language, field, data, message):
    client = client_for(hq_admin, language=language)
    category = Category.objects.get(code="basic-care")
    before = (Item.objects.count(), sales_state())

    response = client.post(
        "/catalog/items/new/",
        {
            "code": "new-item",
            "name": "新项目",
            "category": category.pk,
            "price": "100",
            "duration_minutes": "30",
            **data,
        },
    )

    assert response.status_code == 400
    assert field_errors(response.content.decode(), field) == [message]
    assert (Item.objects.count(), sales_state()) == before


def test_catalogue_pages_need_catalog_manage(manager, catalogue, client_for):
    client = client_for(manager)
    assert client.get("/catalog/items/").status_code == 403
    assert client.get("/catalog/categories/new/").status_code == 403
    assert client.post(f"/catalog/items/{catalogue['facial'].pk}/", {"name": "x"}).status_code == 403


def test_manager_sets_and_clears_a_store_price(manager, catalogue, store1, client_for):
    client = client_for(manager)
    facial = catalogue["facial"]

    page = client.get("/catalog/prices/")
    set_price = client.post(
        f"/catalog/prices/{facial.pk}/", {f"p{facial.pk}-item": facial.pk, f"p{facial.pk}-price": "650"}
    )
    shown = client.get("/catalog/prices/").content.decode()
    cleared = client.post(f"/catalog/prices/{facial.pk}/", {f"p{facial.pk}-item": facial.pk, f"p{facial.pk}-price": ""})

    assert page.status_code == 200 and "基础护理" in page.content.decode()
    assert set_price.status_code == 302
    assert "¥650.00" in shown
    assert cleared.status_code == 302
    assert not StorePrice.objects.filter(store=store1).exists()


@pytest.mark.parametrize(
    ("language", "message"),
    [(None, "价格：不能为负数。"), ("en", "price: must not be negative.")],
)
def test_negative_store_price_is_refused_beside_the_price(manager, catalogue, client_for, language, message):
    client = client_for(manager, language=language)
    facial = catalogue["facial"]

    response = client.post(
        f"/catalog/prices/{facial.pk}/", {f"p{facial.pk}-item": facial.pk, f"p{facial.pk}-price": "-1"}
    )

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not StorePrice.objects.exists()


def test_receptionist_cannot_set_store_prices(receptionist, catalogue, client_for):
    facial = catalogue["facial"]
    client = client_for(receptionist)
    assert client.get("/catalog/prices/").status_code == 403
    assert client.post(f"/catalog/prices/{facial.pk}/", {f"p{facial.pk}-price": "1"}).status_code == 403
    assert not StorePrice.objects.exists()
