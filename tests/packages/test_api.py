"""The packages API: products, a member's packages, 划卡, refund preview and refund, freeze/extend, transfer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from rest_framework.test import APIClient

from meiye.catalog.models import Item
from meiye.members.models import Member
from meiye.org.models import Staff, Store
from meiye.packages.models import MemberPackage, PackageProduct, PackageStatus

Sell = Callable[..., list[MemberPackage]]


def test_product_create_and_list(api_for: Callable[..., APIClient], hq_admin: Staff, services: dict[str, Item]) -> None:
    api = api_for(hq_admin)
    body = {
        "code": "facial-10",
        "name": "面部护理10次卡",
        "price": "1980.00",
        "kind": "count",
        "items": [{"service_id": services["facial"].pk, "count": 10, "validity_value": 12}],
    }
    created = api.post("/api/v1/package-products/", body, format="json", HTTP_IDEMPOTENCY_KEY="p1")
    assert created.status_code == 201, created.content
    assert created.json()["price"] == "1980.00"
    assert created.json()["items"][0]["count"] == 10
    listed = api.get("/api/v1/package-products/")
    assert [p["code"] for p in listed.json()] == ["facial-10"]


def test_product_create_needs_cards_manage(
    api_for: Callable[..., APIClient], receptionist: Staff, services: dict[str, Item]
) -> None:
    body = {
        "code": "x",
        "name": "x",
        "price": "1.00",
        "kind": "count",
        "items": [{"service_id": services["facial"].pk, "count": 1, "validity_value": 1}],
    }
    refused = api_for(receptionist).post("/api/v1/package-products/", body, format="json")
    assert refused.status_code == 403
    assert refused["Content-Type"].startswith("application/problem+json")


def test_member_packages_use_and_refund(
    api_for: Callable[..., APIClient],
    receptionist: Staff,
    manager: Staff,
    beautician: Staff,
    sell: Sell,
    facial_card: PackageProduct,
    member: Member,
) -> None:
    (package,) = sell(facial_card, member, on=date.today())
    item = package.items.get()
    desk = api_for(receptionist)
    listed = desk.get(f"/api/v1/members/{member.pk}/packages/")
    assert listed.status_code == 200
    assert listed.json()[0]["items"][0]["remaining"] == 10
    no_key = desk.post(f"/api/v1/member-packages/{package.pk}/use/", {"member_item_id": item.pk}, format="json")
    assert no_key.status_code == 400
    used = desk.post(
        f"/api/v1/member-packages/{package.pk}/use/",
        {"member_item_id": item.pk, "sessions": 3, "performed_by_id": beautician.pk},
        format="json",
        HTTP_IDEMPOTENCY_KEY="use-1",
    )
    assert used.status_code == 201, used.content
    assert (used.json()["remaining"], used.json()["performed_by_id"]) == (7, beautician.pk)
    boss = api_for(manager)
    preview = boss.get(f"/api/v1/member-packages/{package.pk}/refund/preview/")
    assert (preview.json()["amount"], preview.json()["formula"]) == ("1386.00", "unit_price")
    refused = desk.post(
        f"/api/v1/member-packages/{package.pk}/refund/",
        {"tender": "cash", "reason": "x"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="r1",
    )
    assert refused.status_code == 403
    refunded = boss.post(
        f"/api/v1/member-packages/{package.pk}/refund/",
        {"tender": "cash", "reason": "搬家"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="r2",
    )
    assert refunded.status_code == 200, refunded.content
    assert (refunded.json()["status"], refunded.json()["refunded"]) == ("refunded", "1386.00")


def test_use_refused_is_problem_json(
    api_for: Callable[..., APIClient], receptionist: Staff, sell: Sell, facial_card: PackageProduct, member: Member
) -> None:
    (package,) = sell(facial_card, member, on=date.today())
    item = package.items.get()
    refused = api_for(receptionist).post(
        f"/api/v1/member-packages/{package.pk}/use/",
        {"member_item_id": item.pk, "sessions": 11},
        format="json",
        HTTP_IDEMPOTENCY_KEY="u11",
    )
    assert refused.status_code == 400
    assert refused.json()["code"] == "package.insufficient_sessions"


def test_freeze_extend_transfer(
    api_for: Callable[..., APIClient],
    manager: Staff,
    sell: Sell,
    combo: PackageProduct,
    member: Member,
    make_member: Callable[..., Member],
    store1: Store,
) -> None:
    other = make_member(store1, name="王女士")
    (package,) = sell(combo, member, on=date.today())
    boss = api_for(manager)
    frozen = boss.post(f"/api/v1/member-packages/{package.pk}/freeze/", {"reason": "出差"}, format="json")
    assert frozen.json()["status"] == "frozen"
    assert boss.post(f"/api/v1/member-packages/{package.pk}/unfreeze/", {}, format="json").json()["status"] == "active"
    extended = boss.post(f"/api/v1/member-packages/{package.pk}/extend/", {"days": 10, "reason": "补偿"}, format="json")
    assert extended.status_code == 200
    moved = boss.post(
        f"/api/v1/member-packages/{package.pk}/transfer/",
        {"to_member_id": other.pk, "reason": "送人"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="t1",
    )
    assert moved.status_code == 201, moved.content
    assert moved.json()["member_id"] == other.pk
    assert MemberPackage.objects.get(pk=package.pk).status == PackageStatus.TRANSFERRED
