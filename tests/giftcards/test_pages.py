"""Gift cards at the front desk: sell (codes shown once, with vouchers), look up by code (POST), list and card
page (masked), void; permissions; English; every template string translated in the app's catalogue."""

from __future__ import annotations

import re
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.test import Client

from meiye.giftcards.models import GiftCard
from meiye.ledger.models import Journal
from tests.frontdesk.support import compile_translations
from tests.giftcards.conftest import store_balance

TEMPLATES = Path(settings.BASE_DIR) / "meiye/frontdesk/templates/frontdesk/giftcards"
CATALOGUE = Path(settings.BASE_DIR) / "meiye/giftcards/locale/en/LC_MESSAGES/django.po"
VIEWS = Path(settings.BASE_DIR) / "meiye/frontdesk/views/giftcards_pages.py"


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


def _key(content: str) -> str:
    match = re.search(r'name="idempotency_key" value="([^"]+)"', content)
    assert match is not None
    return match.group(1)


def _sell_form(key: str, today, **extra):
    return {
        "face": "500.00",
        "price": "450.00",
        "quantity": "2",
        "multi_use": "1",
        "expires_on": today.replace(year=today.year + 1).isoformat(),
        "tender": "cash",
        "external_ref": "",
        "idempotency_key": key,
        **extra,
    }


def test_sell_shows_the_codes_once_with_vouchers(receptionist, client_for, store1, today):
    client = client_for(receptionist)
    page = client.get("/gift-cards/sell/")
    assert page.status_code == 200
    key = _key(page.content.decode())

    sold = client.post("/gift-cards/sell/", _sell_form(key, today))

    assert sold.status_code == 200
    assert "no-store" in sold["Cache-Control"]
    html = sold.content.decode()
    cards = list(GiftCard.objects.order_by("id"))
    assert len(cards) == 2
    for card in cards:
        printed = "-".join(card.code[i : i + 4] for i in range(0, 16, 4))
        assert html.count(printed) == 2  # the table and the voucher
    assert html.count('class="receipt receipt-80mm giftcard-voucher"') == 2
    assert "data-print" in html and "frontdesk/giftcards.js" in html
    assert store_balance(store1, "tender_cash") == -90_000

    # the same form sent again sells nothing more
    again = client.post("/gift-cards/sell/", _sell_form(key, today))
    assert again.status_code == 200
    assert GiftCard.objects.count() == 2 and Journal.objects.filter(code="giftcards.sell").count() == 1

    # no other page shows a code
    codes = [card.code for card in cards]
    for url in ("/gift-cards/", f"/gift-cards/{cards[0].pk}/", "/gift-cards/lookup/"):
        body = client.get(url).content.decode()
        assert not any(code in body or code[:4] + "-" + code[4:8] in body for code in codes), url
    listed = client.get("/gift-cards/").content.decode()
    assert all(card.masked_code in listed for card in cards)


def test_a_refusal_shows_beside_the_field_and_sells_nothing(receptionist, client_for, today):
    client = client_for(receptionist)
    key = _key(client.get("/gift-cards/sell/").content.decode())

    response = client.post("/gift-cards/sell/", _sell_form(key, today, price="500.01"))

    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="error-price"' in html
    assert "售价：必须大于 0 且不高于面值 ¥500.00。" in html
    assert not GiftCard.objects.exists() and not Journal.objects.exists()


def test_look_up_by_code_shows_balance_and_uses_masked(receptionist, client_for, sell, pay):
    [card] = sell("500.00", "450.00")
    pay(card, 12_000, bill_id=42)
    client = client_for(receptionist)

    typed = "-".join(card.code[i : i + 4] for i in range(0, 16, 4)).lower()
    response = client.post("/gift-cards/lookup/", {"code": typed})

    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'data-testid="balance">¥380\.00<', html)
    assert re.search(rf'data-testid="masked-code">{re.escape(card.masked_code)}<', html)
    assert "#42" in html
    assert card.code not in html and typed not in html

    missing = client.post("/gift-cards/lookup/", {"code": "0000-0000-0000-0000"})
    assert missing.status_code == 404
    assert "找不到这张卡" in missing.content.decode()


def test_void_from_the_card_page(manager, receptionist, client_for, sell, store1):
    [card] = sell("500.00", "450.00")
    assert "作废礼品卡" not in client_for(receptionist).get(f"/gift-cards/{card.pk}/").content.decode()
    assert client_for(receptionist).post(f"/gift-cards/{card.pk}/void/", {"reason": "x"}).status_code == 403
    client = client_for(manager)
    page = client.get(f"/gift-cards/{card.pk}/").content.decode()
    key = _key(page)

    response = client.post(f"/gift-cards/{card.pk}/void/", {"reason": "多售一张", "idempotency_key": key})

    assert response.status_code == 302
    card.refresh_from_db()
    assert card.status == "void"
    assert store_balance(store1, "tender_wechat") == 0
    after = client.get(f"/gift-cards/{card.pk}/").content.decode()
    assert "已作废" in after and "多售一张" in after


def test_void_of_a_used_card_is_refused_beside_the_field(manager, client_for, sell, pay):
    [card] = sell("500.00")
    pay(card, 100, bill_id=7)
    client = client_for(manager)
    key = _key(client.get(f"/gift-cards/{card.pk}/").content.decode())
    response = client.post(f"/gift-cards/{card.pk}/void/", {"reason": "x", "idempotency_key": key})
    assert response.status_code == 400
    assert "已使用过" in response.content.decode()


def test_permissions_and_scoping(beautician, receptionist2, client_for, sell):
    [card] = sell()
    for url in ("/gift-cards/", "/gift-cards/sell/", "/gift-cards/lookup/"):
        assert client_for(beautician).get(url).status_code == 403, url
    assert client_for(receptionist2).get(f"/gift-cards/{card.pk}/").status_code == 404
    assert card.masked_code not in client_for(receptionist2).get("/gift-cards/").content.decode()


def test_pages_render_in_english(hq_admin, client_for, sell):
    [card] = sell()
    client = client_for(hq_admin, language="en")
    for url in ("/gift-cards/", "/gift-cards/sell/", "/gift-cards/lookup/", f"/gift-cards/{card.pk}/"):
        response = client.get(url)
        assert response.status_code == 200, url
    assert "Sell gift cards" in client.get("/gift-cards/sell/").content.decode()
    assert "Valid until" in client.get(f"/gift-cards/{card.pk}/").content.decode()


def test_every_string_of_the_screens_is_translated():
    wanted: set[str] = set()
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        wanted |= set(re.findall(r"{%\s*translate\s+[\"']([^\"']+)[\"']", text))
        for body in re.findall(r"{%\s*blocktranslate[^%]*%}(.*?){%\s*endblocktranslate", text, re.S):
            wanted.add(re.sub(r"{{\s*(\w+)\s*}}", r"%(\1)s", body))
    wanted |= set(re.findall(r"_(?:lazy)?\(\"([^\"]+)\"\)", VIEWS.read_text(encoding="utf-8")))
    translated = {entry.msgid for entry in polib.pofile(str(CATALOGUE)) if entry.msgstr}
    assert sorted(wanted - translated) == []
