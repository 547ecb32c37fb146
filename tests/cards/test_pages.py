"""Member cards at the front desk: the member panel, managing cards (issue, lost, replace with a fee, close),
the payment-password page (never echoed), import with per-row errors, store settings, scoping, English,
no inline script, and every template string translated in the app's catalogue."""

from __future__ import annotations

import re
from pathlib import Path

import polib
import pytest
from django.conf import settings

from meiye.cards.models import CardAlias, CardSettings, CardStatus, MemberCard, PaymentPassword
from meiye.cards.services import card_issue, card_report_lost
from meiye.ledger.models import Journal

TEMPLATES = Path(settings.BASE_DIR) / "meiye/frontdesk/templates/frontdesk/cards"
CATALOGUE = Path(settings.BASE_DIR) / "meiye/cards/locale/en/LC_MESSAGES/django.po"
VIEWS = Path(settings.BASE_DIR) / "meiye/frontdesk/views/cards_pages.py"


def _key_of(html: str, prefix: str) -> str:
    found = re.search(rf'name="{prefix}-idempotency_key" value="([0-9a-f]+)"', html)
    assert found, f"no key for {prefix}"
    return found.group(1)


def test_panel_lists_cards_and_links(client_for, receptionist, cashier, member):
    card = card_issue(actor=cashier, member=member, idempotency_key="k1")
    html = client_for(receptionist).get(f"/members/{member.pk}/cards/panel/").content.decode()
    assert card.number in html and "未设置支付密码" in html
    assert f"/members/{member.pk}/cards/" in html


def test_a_member_of_another_store_is_404(client_for, receptionist2, member):
    client = client_for(receptionist2)
    assert client.get(f"/members/{member.pk}/cards/panel/").status_code == 404
    assert client.get(f"/members/{member.pk}/cards/").status_code == 404
    assert client.post(f"/members/{member.pk}/cards/lost/", {"lost-reason": "x"}).status_code == 404


def test_issue_then_report_lost_then_replace_with_the_fee(client_for, receptionist, member, store_rules):
    client = client_for(receptionist)
    page = client.get(f"/members/{member.pk}/cards/").content.decode()
    response = client.post(
        f"/members/{member.pk}/cards/issue/",
        {
            "issue-medium": "physical",
            "issue-number": "MY00012345",
            "issue-named": "on",
            "issue-idempotency_key": _key_of(page, "issue"),
        },
    )
    assert response.status_code == 302
    card = MemberCard.objects.get(member=member)
    assert card.number == "MY00012345"

    assert client.post(f"/members/{member.pk}/cards/lost/", {"lost-reason": "丢了"}).status_code == 302
    card.refresh_from_db()
    assert card.status == CardStatus.LOST

    store_rules(fee="10.00")
    page = client.get(f"/members/{member.pk}/cards/").content.decode()
    assert "10.00" in page
    key = _key_of(page, "replace")
    refused = client.post(
        f"/members/{member.pk}/cards/replace/", {"replace-medium": "virtual", "replace-idempotency_key": key}
    )
    assert refused.status_code == 400
    assert "工本费" in refused.content.decode() and 'data-field="replace-fee_tender"' in refused.content.decode()
    done = client.post(
        f"/members/{member.pk}/cards/replace/",
        {"replace-medium": "virtual", "replace-fee_tender": "cash", "replace-idempotency_key": key},
    )
    assert done.status_code == 302
    assert Journal.objects.filter(code="cards.replace_fee").count() == 1
    assert MemberCard.objects.get(member=member, status=CardStatus.ACTIVE).number.startswith("MY")


def test_close_needs_prepaid_refund(client_for, receptionist, manager, cashier, member):
    card_issue(actor=cashier, member=member, idempotency_key="k1")
    page = client_for(manager).get(f"/members/{member.pk}/cards/").content.decode()
    key = _key_of(page, "close")
    assert (
        client_for(receptionist)
        .post(
            f"/members/{member.pk}/cards/close/",
            {"close-tender": "cash", "close-reason": "x", "close-idempotency_key": key},
        )
        .status_code
        == 403
    )
    done = client_for(manager).post(
        f"/members/{member.pk}/cards/close/",
        {"close-tender": "cash", "close-reason": "退卡", "close-idempotency_key": key},
    )
    assert done.status_code == 302
    assert MemberCard.objects.get(member=member).status == CardStatus.CLOSED


def test_password_page_sends_a_code_and_never_echoes_the_password(client_for, receptionist, member, codes):
    client = client_for(receptionist)
    page = client.get(f"/members/{member.pk}/cards/password/").content.decode()
    assert 'type="password"' in page and "data-keypad" in page and "cards.js" in page
    assert client.post(f"/members/{member.pk}/cards/password/", {"send": "1"}).status_code == 302
    refused = client.post(f"/members/{member.pk}/cards/password/", {"code": codes.last, "password": "123456"})
    assert refused.status_code == 400
    html = refused.content.decode()
    assert 'value="123456"' not in html and f'value="{codes.last}"' not in html
    assert "过于简单" in html
    assert (
        client.post(f"/members/{member.pk}/cards/password/", {"code": codes.last, "password": "135790"}).status_code
        == 302
    )
    assert PaymentPassword.objects.get(member=member).is_set


def test_import_preview_shows_row_errors_then_imports(client_for, receptionist, member, product):
    client = client_for(receptionist)
    bad = client.post(
        "/cards/import/", {"csv_text": "OLD-1,13800135678,gold\nOLD-2,19900000000,gold\n", "preview": "1"}
    )
    html = bad.content.decode()
    assert bad.status_code == 200 and "第 2 行" in html and "确认导入" not in html
    good_text = "OLD-1,13800135678,gold\n"
    preview = client.post("/cards/import/", {"csv_text": good_text, "preview": "1"}).content.decode()
    assert "确认导入" in preview and "OLD-1" in preview
    assert client.post("/cards/import/", {"csv_text": good_text, "import": "1"}).status_code == 302
    assert CardAlias.objects.filter(number="OLD-1").exists()


def test_settings_page_is_for_store_managers(client_for, receptionist, hq_admin, store1):
    assert client_for(receptionist).get(f"/stores/{store1.pk}/card-settings/").status_code == 403
    client = client_for(hq_admin)
    assert client.get(f"/stores/{store1.pk}/card-settings/").status_code == 200
    response = client.post(
        f"/stores/{store1.pk}/card-settings/",
        {"replacement_fee": "10.00", "allow_balance_transfer": "on", "require_payment_auth": ""},
    )
    assert response.status_code == 302
    saved = CardSettings.objects.get(store=store1)
    assert (saved.replacement_fee_fen, saved.allow_balance_transfer, saved.require_payment_auth) == (1000, True, False)


def test_english(client_for, receptionist, cashier, member):
    card = card_issue(actor=cashier, member=member, idempotency_key="k1")
    card_report_lost(actor=cashier, card=card)
    client = client_for(receptionist, language="en")
    html = client.get(f"/members/{member.pk}/cards/").content.decode()
    assert "Report lost" not in html  # a lost card offers the found / replace actions
    assert "Cancel the loss report (card found)" in html and "Replace" in html
    assert "Set payment password" in client.get(f"/members/{member.pk}/cards/password/").content.decode()


def test_pages_carry_no_inline_script_or_style(client_for, receptionist, hq_admin, member, store1):
    client = client_for(receptionist)
    pages = [
        client.get(f"/members/{member.pk}/cards/").content.decode(),
        client.get(f"/members/{member.pk}/cards/panel/").content.decode(),
        client.get(f"/members/{member.pk}/cards/password/").content.decode(),
        client.get("/cards/import/").content.decode(),
        client_for(hq_admin).get(f"/stores/{store1.pk}/card-settings/").content.decode(),
    ]
    for html in pages:
        assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
        assert " style=" not in html


@pytest.mark.parametrize("path", ["cards.js"])
def test_static_asset_exists(path):
    from django.contrib.staticfiles import finders

    assert finders.find(f"frontdesk/{path}") is not None


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
