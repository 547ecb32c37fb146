"""Packages at the front desk: products (HQ), the member panel, 划卡 with the beautician, refund page with the
formula before confirming, freeze/extend; permissions; English; every string translated."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.test import Client

from meiye.catalog.models import Item
from meiye.members.models import Member
from meiye.org.models import Staff
from meiye.packages.models import MemberPackage, PackageProduct, PackageStatus
from tests.frontdesk.support import compile_translations

TEMPLATES = Path(settings.BASE_DIR) / "meiye/frontdesk/templates/frontdesk/packages"
CATALOGUE = Path(settings.BASE_DIR) / "meiye/packages/locale/en/LC_MESSAGES/django.po"
VIEWS = Path(settings.BASE_DIR) / "meiye/frontdesk/views/packages_pages.py"

Sell = Callable[..., list[MemberPackage]]


@pytest.fixture(scope="module", autouse=True)
def _translations() -> None:
    compile_translations()


@pytest.fixture
def page_for() -> Callable[..., Client]:
    def make(staff: Staff, *, language: str | None = None) -> Client:
        client = Client()
        client.force_login(staff)
        if language:
            client.cookies["django_language"] = language
        return client

    return make


def _key(content: str) -> str:
    match = re.search(r'name="idempotency_key" value="([^"]+)"', content)
    assert match is not None
    return match.group(1)


def test_hq_creates_a_product_in_one_form(
    page_for: Callable[..., Client], hq_admin: Staff, services: dict[str, Item]
) -> None:
    client = page_for(hq_admin)
    assert client.get("/packages/products/new/").status_code == 200
    response = client.post(
        "/packages/products/new/",
        {
            "code": "facial-10",
            "name": "面部护理10次卡",
            "price": "1980.00",
            "kind": "count",
            "refund_formula": "unit_price",
            "cooling_off_days": "7",
            "is_active": "on",
            "service_0": str(services["facial"].pk),
            "count_0": "10",
            "validity_0": "12",
            "unit_0": "months",
            "from_0": "purchase",
            "unit_1": "months",
            "from_1": "purchase",
            "unit_2": "months",
            "from_2": "purchase",
            "unit_3": "months",
            "from_3": "purchase",
        },
    )
    assert response.status_code == 302, response.content.decode()
    product = PackageProduct.objects.get()
    assert (product.item.kind, product.item.price_fen, product.items.get().count) == ("package", 198000, 10)
    assert "面部护理10次卡" in client.get("/packages/products/").content.decode()


def test_receptionist_may_not_manage_products(page_for: Callable[..., Client], receptionist: Staff) -> None:
    assert page_for(receptionist).get("/packages/products/").status_code == 403


def test_panel_use_and_refund(
    page_for: Callable[..., Client],
    receptionist: Staff,
    manager: Staff,
    beautician: Staff,
    sell: Sell,
    facial_card: PackageProduct,
    member: Member,
) -> None:
    (package,) = sell(facial_card, member, on=date.today())
    item = package.items.get()
    desk = page_for(receptionist)
    panel = desk.get(f"/members/{member.pk}/packages/panel/").content.decode()
    assert "面部护理10次卡" in panel and "10 / 10" in panel
    page = desk.get(f"/packages/{package.pk}/").content.decode()
    used = desk.post(
        f"/packages/{package.pk}/use/",
        {"member_item_id": item.pk, "sessions": "3", "performed_by": beautician.pk, "idempotency_key": _key(page)},
    )
    assert used.status_code == 302
    item.refresh_from_db()
    assert item.remaining == 7
    too_many = desk.post(
        f"/packages/{package.pk}/use/", {"member_item_id": item.pk, "sessions": "8", "idempotency_key": "k-8"}
    )
    assert too_many.status_code == 400
    assert "只剩 7 次" in too_many.content.decode()
    assert desk.get(f"/packages/{package.pk}/refund/").status_code == 403
    boss = page_for(manager)
    refund_page = boss.get(f"/packages/{package.pk}/refund/").content.decode()
    assert "1,386.00" in refund_page or "1386.00" in refund_page
    done = boss.post(
        f"/packages/{package.pk}/refund/", {"tender": "cash", "reason": "搬家", "idempotency_key": _key(refund_page)}
    )
    assert done.status_code == 302
    assert MemberPackage.objects.get(pk=package.pk).refunded_fen == 138600


def test_freeze_and_extend_pages(
    page_for: Callable[..., Client], manager: Staff, sell: Sell, facial_card: PackageProduct, member: Member
) -> None:
    (package,) = sell(facial_card, member, on=date.today())
    boss = page_for(manager)
    assert boss.post(f"/packages/{package.pk}/freeze/", {"reason": "出差"}).status_code == 302
    assert MemberPackage.objects.get(pk=package.pk).status == PackageStatus.FROZEN
    assert boss.post(f"/packages/{package.pk}/freeze/", {"reason": "回来了"}).status_code == 302
    assert MemberPackage.objects.get(pk=package.pk).status == PackageStatus.ACTIVE
    assert boss.post(f"/packages/{package.pk}/extend/", {"days": "30", "reason": ""}).status_code == 400
    assert boss.post(f"/packages/{package.pk}/extend/", {"days": "30", "reason": "补偿"}).status_code == 302


def test_pages_render_in_english(
    page_for: Callable[..., Client], hq_admin: Staff, sell: Sell, facial_card: PackageProduct, member: Member
) -> None:
    (package,) = sell(facial_card, member, on=date.today())
    client = page_for(hq_admin, language="en")
    for url in (
        "/packages/products/",
        "/packages/products/new/",
        f"/packages/{package.pk}/",
        f"/packages/{package.pk}/refund/",
        f"/members/{member.pk}/packages/panel/",
    ):
        assert client.get(url).status_code == 200, url
    assert "Use sessions" in client.get(f"/packages/{package.pk}/").content.decode()
    assert "Refund calculation" in client.get(f"/packages/{package.pk}/refund/").content.decode()


def test_every_string_of_the_screens_is_translated() -> None:
    wanted: set[str] = set()
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        wanted |= set(re.findall(r"{%\s*translate\s+[\"']([^\"']+)[\"']", text))
        for body in re.findall(r"{%\s*blocktranslate[^%]*%}(.*?){%\s*endblocktranslate", text, re.S):
            wanted.add(re.sub(r"{{\s*(\w+)\s*}}", r"%(\1)s", body))
    wanted |= set(re.findall(r"_(?:lazy)?\(\"([^\"]+)\"\)", VIEWS.read_text(encoding="utf-8")))
    translated = {entry.msgid for entry in polib.pofile(str(CATALOGUE)) if entry.msgstr}
    assert sorted(wanted - translated) == []
