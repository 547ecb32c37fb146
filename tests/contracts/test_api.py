"""Contracts and the liability report over the API: read, sign (base64 PNG), PDF, a member's list; scope."""

from __future__ import annotations

import base64

from meiye.contracts.models import Contract
from tests.contracts.conftest import png


def test_get_sign_and_download_a_contract(api_for, receptionist, store1, contract):
    api = api_for(receptionist, store1)
    got = api.get(f"/api/v1/contracts/{contract.pk}/")
    assert got.status_code == 200
    assert got.json()["number"] == contract.number
    assert got.json()["price"] == "3000.00"
    assert got.json()["status"] == "awaiting_signature"
    assert got.json()["body"]["buyer"]["phone"] == "138****5678"

    data_url = "data:image/png;base64," + base64.b64encode(png()).decode()
    signed = api.post(
        f"/api/v1/contracts/{contract.pk}/sign/",
        {"signature_png": data_url},
        format="json",
        HTTP_IDEMPOTENCY_KEY="sign-1",
    )
    assert signed.status_code == 200, signed.content
    assert signed.json()["status"] == "signed"
    assert len(signed.json()["signature_sha256"]) == 64

    again = api.post(
        f"/api/v1/contracts/{contract.pk}/sign/",
        {"signature_png": base64.b64encode(png(300, 120)).decode()},
        format="json",
    )
    assert again.status_code == 409
    assert again["Content-Type"] == "application/problem+json"
    assert again.json()["code"] == "contract.already_signed"

    pdf = api.get(f"/api/v1/contracts/{contract.pk}/pdf/")
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert contract.number.encode() in pdf.content


def test_bad_signature_data_is_a_400_and_changes_nothing(api_for, receptionist, store1, contract):
    api = api_for(receptionist, store1)
    for body in (
        {"signature_png": "not base64!"},
        {"signature_png": base64.b64encode(b"hello").decode()},
        {"signature_png": "data:image/jpeg;base64,AAAA"},
    ):
        answer = api.post(f"/api/v1/contracts/{contract.pk}/sign/", body, format="json")
        assert answer.status_code == 400
        assert answer.json()["code"] == "contract.signature_invalid"
    assert not Contract.objects.get(pk=contract.pk).signed


def test_a_members_contracts(api_for, receptionist, store1, contract, member):
    answer = api_for(receptionist, store1).get(f"/api/v1/members/{member.pk}/contracts/")
    assert answer.status_code == 200
    assert [row["number"] for row in answer.json()] == [contract.number]


def test_a_contract_of_a_member_of_another_store_is_404(
    api_for, receptionist, receptionist2, store1, store2, contract, member
):
    api = api_for(receptionist2, store2)
    for url in (
        f"/api/v1/contracts/{contract.pk}/",
        f"/api/v1/contracts/{contract.pk}/pdf/",
        f"/api/v1/members/{member.pk}/contracts/",
    ):
        answer = api.get(url)
        assert answer.status_code == 404, url
        assert answer["Content-Type"] == "application/problem+json"
    answer = api.post(
        f"/api/v1/contracts/{contract.pk}/sign/", {"signature_png": base64.b64encode(png()).decode()}, format="json"
    )
    assert answer.status_code == 404
    assert not Contract.objects.get(pk=contract.pk).signed


def test_the_liability_report(api_for, manager, receptionist, store1, store2, contract):
    api = api_for(manager, store1)
    answer = api.get("/api/v1/reports/prepaid-liability/", {"store": store1.pk})
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["rows"][0]["principal"] == "3000.00"
    assert body["totals"]["total"] == "3000.00"
    assert api.get("/api/v1/reports/prepaid-liability/", {"store": store2.pk}).status_code == 404
    assert api.get("/api/v1/reports/prepaid-liability/", {"date": "2026-13-01"}).status_code == 400
    assert api.get("/api/v1/reports/prepaid-liability/", {"date": "2000-01-01"}).json()["totals"]["total"] == "0.00"
    assert api_for(receptionist, store1).get("/api/v1/reports/prepaid-liability/").status_code == 403
