"""Contracts and the liability report at the front desk: printable page, signing pad, PDF, member list, report
and CSV; scope and permissions; English; every template string translated in the app's catalogue."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.test import Client

from meiye.contracts.models import Contract
from tests.contracts.conftest import png
from tests.frontdesk.support import compile_translations

TEMPLATES = [
    Path(settings.BASE_DIR) / "meiye/frontdesk/templates/frontdesk/contracts",
    Path(settings.BASE_DIR) / "meiye/frontdesk/templates/frontdesk/liability",
]
CATALOGUE = Path(settings.BASE_DIR) / "meiye/contracts/locale/en/LC_MESSAGES/django.po"
VIEWS = Path(settings.BASE_DIR) / "meiye/frontdesk/views/contracts_pages.py"


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


def _data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def test_the_contract_page_is_printable_with_the_phone_masked(client_for, receptionist, contract):
    page = client_for(receptionist).get(f"/contracts/{contract.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert contract.number in html
    assert "138****5678" in html and "13812345678" not in html
    assert "¥3000.00" in html
    assert "receipt-a4" in html and "data-print" in html
    assert f"/contracts/{contract.pk}/sign/" in html
    assert "<script>" not in html and 'style="' not in html


def test_signing_through_the_pad_form(client_for, receptionist, contract):
    client = client_for(receptionist)
    form = client.get(f"/contracts/{contract.pk}/sign/")
    assert form.status_code == 200
    html = form.content.decode()
    assert "data-signature-pad" in html and "signature.js" in html and "<script>" not in html

    done = client.post(f"/contracts/{contract.pk}/sign/", {"signature": _data_url(png()), "agree": "on"})
    assert done.status_code == 302 and done["Location"] == f"/contracts/{contract.pk}/"
    assert Contract.objects.get(pk=contract.pk).signed
    page = client.get(f"/contracts/{contract.pk}/").content.decode()
    assert "signature-image" in page
    image = client.get(f"/contracts/{contract.pk}/signature.png")
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    # Signed: the pad is not offered again.
    assert client.get(f"/contracts/{contract.pk}/sign/").status_code == 302


def test_a_blank_or_bad_signature_shows_beside_the_pad(client_for, receptionist, contract):
    client = client_for(receptionist)
    for data in ("", _data_url(png(blank=True)), "data:image/png;base64,@@@"):
        answer = client.post(f"/contracts/{contract.pk}/sign/", {"signature": data, "agree": "on"})
        assert answer.status_code == 400
        assert 'id="error-signature"' in answer.content.decode()
    assert not Contract.objects.get(pk=contract.pk).signed


def test_the_pdf_download(client_for, receptionist, contract):
    answer = client_for(receptionist).get(f"/contracts/{contract.pk}/pdf/")
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/pdf"
    assert answer.content.startswith(b"%PDF")
    assert contract.number.encode() in answer.content


def test_a_members_contracts_page(client_for, receptionist, member, contract):
    page = client_for(receptionist).get(f"/members/{member.pk}/contracts/")
    assert page.status_code == 200
    assert contract.number in page.content.decode()


def test_pages_of_a_member_of_another_store_are_404(client_for, receptionist2, member, contract):
    client = client_for(receptionist2)
    for url in (
        f"/contracts/{contract.pk}/",
        f"/contracts/{contract.pk}/sign/",
        f"/contracts/{contract.pk}/pdf/",
        f"/members/{member.pk}/contracts/",
    ):
        assert client.get(url).status_code == 404, url
    assert (
        client.post(f"/contracts/{contract.pk}/sign/", {"signature": _data_url(png()), "agree": "on"}).status_code
        == 404
    )
    assert not Contract.objects.get(pk=contract.pk).signed


def test_a_beautician_may_read_but_not_sign(client_for, beautician, contract):
    client = client_for(beautician)
    assert client.get(f"/contracts/{contract.pk}/").status_code == 200
    assert client.get(f"/contracts/{contract.pk}/sign/").status_code == 403


def test_the_liability_page_and_csv(client_for, manager, receptionist, store1, contract):
    client = client_for(manager)
    page = client.get("/liability/")
    assert page.status_code == 200
    assert "¥3,000.00" in page.content.decode()
    csv_answer = client.get("/liability/export.csv", {"store": store1.pk})
    assert csv_answer.status_code == 200
    text = csv_answer.content.decode("utf-8-sig")
    assert f"{store1.name},3000.00,0.00,0.00,3000.00,0,0.00,0.00,3000.00" in text
    assert client.get("/liability/", {"date": "nope"}).status_code == 400
    assert client_for(receptionist).get("/liability/").status_code == 403


def test_pages_render_in_english(client_for, manager, contract, member):
    client = client_for(manager, language="en")
    assert "Contract no." in client.get(f"/contracts/{contract.pk}/").content.decode()
    assert "Confirm signature" in client.get(f"/contracts/{contract.pk}/sign/").content.decode()
    assert "Member's contracts" in client.get(f"/members/{member.pk}/contracts/").content.decode()
    assert "Prepaid liability report" in client.get("/liability/").content.decode()


def test_every_string_of_the_screens_is_translated():
    wanted: set[str] = set()
    for folder in TEMPLATES:
        for template in folder.glob("*.html"):
            text = template.read_text(encoding="utf-8")
            wanted |= set(re.findall(r"{%\s*translate\s+[\"']([^\"']+)[\"']", text))
            for body in re.findall(r"{%\s*blocktranslate[^%]*%}(.*?){%\s*endblocktranslate", text, re.S):
                wanted.add(re.sub(r"{{\s*(\w+)\s*}}", r"%(\1)s", body))
    wanted |= set(re.findall(r"_(?:lazy)?\(\"([^\"]+)\"\)", VIEWS.read_text(encoding="utf-8")))
    translated = {entry.msgid for entry in polib.pofile(str(CATALOGUE)) if entry.msgstr}
    assert sorted(wanted - translated) == []
