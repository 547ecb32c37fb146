"""A member's stored value and points on the front desk: the panel on the member page, the page with the
points lots and their expiry, the recharge (idempotent, errors beside fields), store scoping."""

from __future__ import annotations

import re

import pytest

from meiye.loyalty.models import PointsLot
from meiye.wallet.models import Recharge
from tests.frontdesk.sales_fixtures import *  # noqa: F403
from tests.frontdesk.sales_fixtures import balances, field_errors, sales_state


def _recharge_key(client, member) -> str:
    content = client.get(f"/members/{member.pk}/wallet/").content.decode()
    match = re.search(r'name="idempotency_key" value="([^"]+)"', content)
    assert match is not None
    return match.group(1)


def test_member_page_loads_the_wallet_panel(receptionist, vip, client_for):
    client = client_for(receptionist)

    detail = client.get(f"/members/{vip.pk}/").content.decode()
    panel = client.get(f"/members/{vip.pk}/wallet/panel/", headers={"HX-Request": "true"})

    assert f'hx-get="/members/{vip.pk}/wallet/panel/"' in detail
    assert panel.status_code == 200
    content = panel.content.decode()
    assert re.search(r'data-testid="principal">¥1,000.00<', content)
    assert re.search(r'data-testid="bonus">¥200.00<', content)
    assert re.search(r'data-testid="points">12000<', content)
    lot = PointsLot.objects.get(member=vip)
    assert f"12000 积分于 {lot.expires_on:%Y-%m-%d} 到期" in content
    assert "为她开单" in content


def test_wallet_page_shows_lots_history_and_recharges(receptionist, completed_bill, vip, client_for):
    content = client_for(receptionist).get(f"/members/{vip.pk}/wallet/").content.decode()

    assert re.search(r'data-testid="principal">¥583.33<', content)
    assert re.search(r'data-testid="points">12991<', content)
    # lots, the first to expire first, with their expiry dates
    for lot in PointsLot.objects.filter(member=vip):
        assert f'<td class="mono">{lot.expires_on:%Y-%m-%d}</td>' in content
    assert "消费" in content and "充值" in content and "-¥416.67" in content
    assert "微信" in content and "¥1,000.00" in content


def test_recharge(manager, vip, client_for):
    client = client_for(manager)
    key = _recharge_key(client, vip)

    response = client.post(
        f"/members/{vip.pk}/wallet/recharge/",
        {"amount": "3000", "bonus": "100.00", "tender": "card", "external_ref": "POS-8812", "idempotency_key": key},
    )

    assert response.status_code == 302 and response["Location"] == f"/members/{vip.pk}/wallet/"
    assert balances(vip) == {"principal": 400_000, "bonus": 30_000, "points": 12_000}
    recharge = Recharge.objects.latest("pk")
    assert (
        recharge.amount_fen,
        recharge.bonus_fen,
        recharge.tender,
        recharge.external_ref,
        recharge.idempotency_key,
    ) == (
        300_000,
        10_000,
        "card",
        "POS-8812",
        key,
    )
    assert "已充值 ¥3,000.00，赠送 ¥100.00。" in client.get(response["Location"]).content.decode()


def test_double_submit_of_the_recharge_form_recharges_once(receptionist, vip, client_for):
    client = client_for(receptionist)
    form = {"amount": "500", "tender": "cash", "idempotency_key": _recharge_key(client, vip)}

    first = client.post(f"/members/{vip.pk}/wallet/recharge/", form)
    state = sales_state()
    second = client.post(f"/members/{vip.pk}/wallet/recharge/", form)

    assert first.status_code == second.status_code == 302
    assert sales_state() == state
    assert balances(vip)["principal"] == 150_000


@pytest.mark.parametrize(
    ("language", "data", "field", "message"),
    [
        (None, {"amount": "abc"}, "amount", "金额格式不正确，应为最多两位小数的元，如 12.30。"),
        ("en", {"amount": "abc"}, "amount", "Not an amount in yuan with at most two decimals, e.g. 12.30."),
        (None, {"amount": "0"}, "amount", "金额：必须大于 0。"),
        ("en", {"amount": "0"}, "amount", "amount: must be more than 0."),
        (None, {"amount": ""}, "amount", "该字段是必填项。"),
        (
            "en",
            {"amount": "100", "external_ref": "x" * 65},
            "external_ref",
            "Ensure this value has at most 64 characters (it has 65).",
        ),
    ],
)
def test_recharge_errors_beside_their_field_and_nothing_written(
    receptionist, vip, client_for, language, data, field, message
):
    client = client_for(receptionist, language=language)
    key = _recharge_key(client, vip)
    before = sales_state()

    response = client.post(f"/members/{vip.pk}/wallet/recharge/", {"tender": "cash", "idempotency_key": key, **data})

    assert response.status_code == 400
    content = response.content.decode()
    assert field_errors(content, field) == [message]
    # the same key is kept, so a corrected form is still one recharge
    assert f'name="idempotency_key" value="{key}"' in content
    assert sales_state() == before


def test_recharge_needs_checkout_permission(beautician, vip, client_for):
    client = client_for(beautician)
    page = client.get(f"/members/{vip.pk}/wallet/")
    before = sales_state()

    response = client.post(
        f"/members/{vip.pk}/wallet/recharge/", {"amount": "100", "tender": "cash", "idempotency_key": "b-1"}
    )

    assert page.status_code == 200
    assert "储值充值" not in page.content.decode()
    assert response.status_code == 403
    assert sales_state() == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/members/{pk}/wallet/"),
        ("get", "/members/{pk}/wallet/panel/"),
        ("post", "/members/{pk}/wallet/recharge/"),
    ],
)
def test_wallet_of_a_member_of_another_store_is_404(receptionist, store2, make_member, client_for, method, path):
    other = make_member(store2, phone="13700000005", name="徐汇会员")
    before = sales_state()

    response = getattr(client_for(receptionist), method)(
        path.format(pk=other.pk),
        {"amount": "100", "tender": "cash", "idempotency_key": "scope-1"} if method == "post" else None,
    )

    assert response.status_code == 404
    assert sales_state() == before


# --- card products, rules, preview, instalments, cooling-off refund, close (issue 5) ------------------------

from pathlib import Path  # noqa: E402

import polib  # noqa: E402
from django.conf import settings  # noqa: E402

from meiye.wallet.models import BonusInstalment, CardProduct, RechargeRule, WalletClosure  # noqa: E402
from meiye.wallet.services import (  # noqa: E402
    CardProductInput,
    RechargeRuleInput,
    card_product_save,
    recharge_rule_save,
)

BASE = Path(settings.BASE_DIR)


@pytest.fixture
def s13_product(hq_admin, store1, actor_for) -> CardProduct:
    hq = actor_for(hq_admin, store1)
    product = card_product_save(actor=hq, data=CardProductInput(code="standard", name="储值卡", is_default=True))
    recharge_rule_save(
        actor=hq,
        product=product,
        data=RechargeRuleInput(threshold_fen=300_000, bonus_fen=60_000, instalments=6, bonus_points=300),
    )
    return product


def _key_after(content: str, marker: str) -> str:
    match = re.search(r'name="idempotency_key" value="([^"]+)"', content[content.index(marker) :])
    assert match is not None
    return match.group(1)


def test_recharge_preview_and_recharge_with_a_product(receptionist, vip, s13_product, client_for):
    client = client_for(receptionist)
    page = client.get(f"/members/{vip.pk}/wallet/").content.decode()
    assert f'hx-get="/members/{vip.pk}/wallet/recharge/preview/"' in page and "储值卡" in page

    preview = client.get(
        f"/members/{vip.pk}/wallet/recharge/preview/", {"amount": "3000", "product": s13_product.pk}
    ).content.decode()
    assert "充3000送600：立即到账 100.00，另 500.00 分 5 个月到账，送 300 积分" in preview
    english = client_for(receptionist, language="en")
    preview_en = english.get(f"/members/{vip.pk}/wallet/recharge/preview/", {"amount": "3000"}).content.decode()
    assert "100.00 at once, 500.00 more over 5 months, 300 points" in preview_en
    assert (
        "没有充值赠送" in client.get(f"/members/{vip.pk}/wallet/recharge/preview/", {"amount": "10"}).content.decode()
    )

    response = client.post(
        f"/members/{vip.pk}/wallet/recharge/",
        {
            "product": s13_product.pk,
            "named": "1",
            "amount": "3000.00",
            "tender": "wechat",
            "idempotency_key": _recharge_key(client, vip),
        },
    )
    assert response.status_code == 302
    page = client.get(f"/members/{vip.pk}/wallet/").content.decode()
    assert re.search(r'data-testid="pending">¥500.00<', page)
    assert page.count('data-testid="instalment"') == 5
    # a receptionist sees neither the cooling-off refund nor the close
    assert "/refund/" not in page and "/wallet/close/" not in page


def test_cooling_off_refund_and_close_pages(manager, make_member, store1, s13_product, client_for):
    member = make_member(store1)
    client = client_for(manager)
    client.post(
        f"/members/{member.pk}/wallet/recharge/",
        {"amount": "3000.00", "tender": "wechat", "product": s13_product.pk, "idempotency_key": "page-rc"},
    )
    recharge = Recharge.objects.get(member=member)
    page = client.get(f"/members/{member.pk}/wallet/").content.decode()
    url = f"/members/{member.pk}/wallet/recharges/{recharge.pk}/refund/"
    assert url in page and "/wallet/close/" in page

    # a refund without a reason stays on the page with the error beside the field
    bad = client.post(url, {"tender": "wechat", "reason": "", "idempotency_key": "r0"})
    assert bad.status_code == 400 and field_errors(bad.content.decode(), "reason")

    ok = client.post(url, {"tender": "wechat", "reason": "冷静期反悔", "idempotency_key": "r1"})
    assert ok.status_code == 302
    recharge.refresh_from_db()
    assert recharge.refunded_at is not None
    assert set(BonusInstalment.objects.values_list("status", flat=True)) == {"cancelled"}

    # nothing left: closing is refused beside the form
    client.post(
        f"/members/{member.pk}/wallet/recharge/",
        {"amount": "100.00", "tender": "cash", "product": s13_product.pk, "idempotency_key": "page-rc2"},
    )
    closed = client.post(
        f"/members/{member.pk}/wallet/close/", {"tender": "cash", "reason": "退卡", "idempotency_key": "c1"}
    )
    assert closed.status_code == 302
    assert WalletClosure.objects.get(member=member).principal_fen == 10_000


def test_refund_and_close_need_prepaid_refund(receptionist, vip, client_for):
    client = client_for(receptionist)
    assert client.post(f"/members/{vip.pk}/wallet/close/", {"tender": "cash", "reason": "x"}).status_code == 403


def test_card_products_and_rules_pages(hq_admin, receptionist, client_for):
    client = client_for(hq_admin)
    assert client.get("/settings/card-products/").status_code == 200
    created = client.post(
        "/settings/card-products/new/",
        {"code": "vip", "name": "VIP储值卡", "named_cap": "5000", "cooling_off_days": "7", "active": "on"},
    )
    assert created.status_code == 302
    product = CardProduct.objects.get(code="vip")
    assert (product.named_cap_fen, product.anonymous_cap_fen) == (500_000, None)
    rule = client.post(
        f"/settings/card-products/{product.pk}/rules/new/",
        {
            "threshold": "3000",
            "bonus": "600",
            "instalments": "6",
            "bonus_points": "300",
            "coupon_count": "0",
            "grant_months": "12",
            "active": "on",
        },
    )
    assert rule.status_code == 302, rule.content.decode()
    saved = RechargeRule.objects.get(product=product)
    assert (saved.threshold_fen, saved.bonus_fen, saved.instalments) == (300_000, 60_000, 6)
    page = client.get(f"/settings/card-products/{product.pk}/").content.decode()
    assert "充3000送600" in page
    bad = client.post(
        f"/settings/card-products/{product.pk}/rules/{saved.pk}/",
        {"threshold": "3000", "instalments": "0", "bonus_points": "0", "coupon_count": "0", "grant_months": "12"},
    )
    assert bad.status_code == 400 and field_errors(bad.content.decode(), "instalments")
    assert client_for(receptionist).get("/settings/card-products/").status_code == 403
    english = client_for(hq_admin, language="en").get("/settings/card-products/").content.decode()
    assert "Card products" in english and "Named-card principal cap" in english


def test_every_new_string_is_translated_and_no_inline_script():
    wanted: set[str] = set()
    templates = [
        *(BASE / "meiye/frontdesk/templates/frontdesk/wallet").glob("*.html"),
        *(BASE / "meiye/frontdesk/templates/frontdesk/card_products").glob("*.html"),
    ]
    for template in templates:
        text = template.read_text(encoding="utf-8")
        assert "<script" not in text and "style=" not in text, template
        wanted |= set(re.findall(r"{%\s*translate\s+[\"']([^\"']+)[\"']", text))
        for body in re.findall(r"{%\s*blocktranslate[^%]*%}(.*?){%\s*endblocktranslate", text, re.S):
            wanted.add(re.sub(r"{{\s*(\w+)\s*}}", r"%(\1)s", body))
    for source in ("views/wallet.py", "views/card_products_pages.py", "forms_wallet.py"):
        wanted |= set(re.findall(r"_(?:lazy)?\(\s*\"([^\"]+)\"", (BASE / "meiye/frontdesk" / source).read_text()))
    translated = {
        entry.msgid
        for catalogue in ("locale/en/LC_MESSAGES/django.po", "meiye/wallet/locale/en/LC_MESSAGES/django.po")
        for entry in polib.pofile(str(BASE / catalogue))
        if entry.msgstr
    }
    assert sorted(wanted - translated) == []
