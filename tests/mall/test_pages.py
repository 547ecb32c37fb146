"""The points mall on the front desk: find a member and redeem (idempotent form), approvals, history,
items and stock (journals), rules; permissions and store scoping."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from meiye.ledger.models import Journal
from meiye.loyalty.selectors import points_balance
from meiye.mall.models import MallItem, MallRedemption, MallSettings
from meiye.mall.selectors import mall_item_stock
from meiye.mall.services import mall_redeem
from tests.frontdesk.support import compile_translations


@pytest.fixture(scope="module", autouse=True)
def _translations() -> None:
    compile_translations()


@pytest.fixture
def client_for():
    def make(staff, *, language: str | None = None) -> Client:
        client = Client()
        client.force_login(staff)
        if language:
            client.cookies["django_language"] = language
        return client

    return make


def _key(content: str, form_action: str) -> str:
    form = content[content.index(f'action="{form_action}"') :]
    match = re.search(r'name="idempotency_key" value="([^"]+)"', form)
    assert match is not None
    return match.group(1)


def test_S07_redeem_from_the_mall_page(receptionist, client_for, member, earn, mask_box):
    earn(member, 6_200)
    client = client_for(receptionist)

    # find the member
    found = client.get("/mall/redeem/", {"q": member.name}).content.decode()
    assert f'href="/mall/members/{member.pk}/"' in found
    assert "面膜礼盒" in found

    page = client.get(f"/mall/members/{member.pk}/").content.decode()
    assert re.search(r'data-testid="points">6200<', page)
    assert "面膜礼盒 · 5000 积分 · 库存 3" in page
    key = _key(page, f"/mall/members/{member.pk}/")

    # redeem, then send the same form again
    form = {"item": mask_box.pk, "quantity": 1, "tender": "", "idempotency_key": key}
    first = client.post(f"/mall/members/{member.pk}/", form)
    again = client.post(f"/mall/members/{member.pk}/", form)

    assert first.status_code == 302 and again.status_code == 302
    assert MallRedemption.objects.count() == 1
    assert points_balance(member) == 1_200
    assert mall_item_stock(mask_box) == 2
    after = client.get(f"/mall/members/{member.pk}/").content.decode()
    assert "已兑换 面膜礼盒 × 1，扣除 5000 积分。" in after
    assert re.search(r'data-testid="points">1200<', after)
    assert "已完成" in after


def test_a_refusal_shows_beside_the_field_and_changes_nothing(receptionist, client_for, member, earn, make_item):
    earn(member, 6_200)
    sample = make_item("小样", 300, stock=5)
    client = client_for(receptionist)
    key = _key(client.get(f"/mall/members/{member.pk}/").content.decode(), f"/mall/members/{member.pk}/")

    response = client.post(
        f"/mall/members/{member.pk}/", {"item": sample.pk, "quantity": 1, "tender": "", "idempotency_key": key}
    )

    assert response.status_code == 400
    assert "兑换积分不能少于 500（本次 300）。" in response.content.decode()
    assert MallRedemption.objects.count() == 0
    assert points_balance(member) == 6_200


def test_S07_pending_approval_and_rejection_on_the_approvals_page(
    receptionist, manager, cashier, client_for, member, earn, make_item
):
    device = make_item("美容仪", 20_000, stock=2)
    earn(member, 45_000)
    first = mall_redeem(actor=cashier, member=member, item=device, idempotency_key="p1")
    second = mall_redeem(actor=cashier, member=member, item=device, idempotency_key="p2")
    assert points_balance(member) == 5_000
    manager_client = client_for(manager)

    pending = manager_client.get("/mall/pending/").content.decode()
    assert pending.count("驳回并退回积分") == 2
    assert client_for(receptionist).get("/mall/pending/").status_code == 403

    assert manager_client.post(f"/mall/redemptions/{first.pk}/approve/", {"note": "ok"}).status_code == 302
    assert manager_client.post(f"/mall/redemptions/{second.pk}/reject/", {"reason": "一人一台"}).status_code == 302

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("completed", "rejected")
    assert points_balance(member) == 25_000
    assert mall_item_stock(device) == 1
    history = manager_client.get("/mall/redemptions/").content.decode()
    assert "一人一台" in history and "已驳回" in history
    rejected_only = manager_client.get("/mall/redemptions/", {"status": "rejected"}).content.decode()
    assert rejected_only.count("美容仪") == 1
    # a reject without a reason is refused and changes nothing
    third = mall_redeem(actor=cashier, member=member, item=device, idempotency_key="p3")
    response = manager_client.post(f"/mall/redemptions/{third.pk}/reject/", {"reason": ""}, follow=True)
    assert "驳回原因：必填。" in response.content.decode()
    third.refresh_from_db()
    assert third.status == "pending"


def test_items_stock_and_rules_pages(hq_admin, receptionist, client_for, store2):
    client = client_for(hq_admin)
    page = client.get("/mall/items/new/").content.decode()
    key = _key(page, "") if 'action=""' in page else re.search(r'name="idempotency_key" value="([^"]+)"', page)[1]

    created = client.post(
        "/mall/items/new/",
        {
            "kind": "gift",
            "name": "面膜礼盒",
            "points_price": 5000,
            "stock_limited": "on",
            "initial_stock": 3,
            "stores": [store2.pk],
            "is_active": "on",
            "idempotency_key": key,
        },
    )
    assert created.status_code == 302, created.content.decode()
    item = MallItem.objects.get()
    assert mall_item_stock(item) == 3
    assert list(item.stores.values_list("pk", flat=True)) == [store2.pk]

    edit = client.get(f"/mall/items/{item.pk}/").content.decode()
    assert re.search(r'data-testid="stock">3<', edit)
    stock_key = _key(edit, f"/mall/items/{item.pk}/stock/")
    assert client.post(f"/mall/items/{item.pk}/stock/", {"quantity": 2, "memo": "到货", "idempotency_key": stock_key})
    assert client.post(f"/mall/items/{item.pk}/stock/", {"quantity": 2, "memo": "到货", "idempotency_key": stock_key})
    assert mall_item_stock(item) == 5
    assert Journal.objects.filter(code="mall.stock_in").count() == 2  # the initial stock and one restock

    too_many = client.post(f"/mall/items/{item.pk}/stock/", {"quantity": -9, "memo": "", "idempotency_key": "x"})
    assert too_many.status_code == 400
    assert "库存：只剩 5 件，不能减少 9 件。" in too_many.content.decode()

    assert (
        client.post("/mall/settings/", {"min_redeem_points": 800, "approval_threshold_points": 30000}).status_code
        == 302
    )
    assert MallSettings.objects.get().min_redeem_points == 800

    # a receptionist may not manage items
    assert client_for(receptionist).get("/mall/items/").status_code == 403
    assert client_for(receptionist).get("/mall/settings/").status_code == 403


def test_a_member_of_another_store_is_404(receptionist2, client_for, member):
    assert client_for(receptionist2).get(f"/mall/members/{member.pk}/").status_code == 404


def test_pages_render_in_english(hq_admin, client_for, member, earn, mask_box):
    client = client_for(hq_admin, language="en")
    for url in (
        "/mall/redeem/",
        f"/mall/members/{member.pk}/",
        "/mall/pending/",
        "/mall/redemptions/",
        "/mall/items/",
        f"/mall/items/{mask_box.pk}/",
        "/mall/settings/",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
    assert "Points mall" in client.get("/mall/redemptions/").content.decode()
