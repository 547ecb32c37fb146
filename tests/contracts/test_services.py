"""Signing a contract, reading it in scope, and its PDF."""

from __future__ import annotations

import hashlib

import pytest

from meiye.audit.models import AuditLog
from meiye.contracts.models import Contract, ContractKind, ContractStatus
from meiye.contracts.pdf import contract_pdf
from meiye.contracts.selectors import contract_get, member_contracts
from meiye.contracts.services import SIGNATURE_MAX_BYTES, contract_sign
from meiye.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from tests.contracts.conftest import png


def test_a_recharge_makes_a_contract_awaiting_signature(contract, member, store1):
    assert contract.kind == ContractKind.STORED_VALUE
    assert contract.status == ContractStatus.AWAITING_SIGNATURE
    assert contract.price_fen == 300000
    assert contract.number.startswith("HT") and contract.number.endswith(f"{contract.pk:06d}")
    assert contract.body["buyer"]["phone"] == "138****5678"
    assert contract.body["seller"]["store"] == store1.name
    assert not contract.signed


def test_signing_stores_the_png_and_marks_the_contract_signed(contract, cashier, receptionist):
    image = png()
    signed = contract_sign(actor=cashier, contract=contract, signature_png=image)
    assert signed.signed and signed.status == ContractStatus.SIGNED
    assert signed.signed_at is not None
    assert signed.signed_by == receptionist
    stored = Contract.objects.get(pk=contract.pk)
    assert bytes(stored.signature) == image
    assert stored.signature_sha256 == hashlib.sha256(image).hexdigest()
    log = AuditLog.objects.get(action="contracts.sign", object_id=str(contract.pk))
    assert log.detail["signature_sha256"] == stored.signature_sha256


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "empty"),
        (b"GIF89a" + b"\x00" * 100, "not a png"),
        (b"\x89PNG\r\n\x1a\n" + b"garbage" * 20, "damaged"),
        (png(20, 10), "too small"),
        (png(5000, 200), "too large in pixels"),
        (png(blank=True), "blank"),
    ],
)
def test_a_bad_signature_is_refused_and_nothing_changes(contract, cashier, data, why):
    with pytest.raises(ValidationFailed) as err:
        contract_sign(actor=cashier, contract=contract, signature_png=data)
    assert err.value.code == "contract.signature_invalid", why
    assert err.value.field == "signature"
    stored = Contract.objects.get(pk=contract.pk)
    assert stored.status == ContractStatus.AWAITING_SIGNATURE and stored.signature is None
    assert not AuditLog.objects.filter(action="contracts.sign").exists()


def test_a_signature_over_the_size_limit_is_refused(contract, cashier):
    data = png() + b"\x00" * (SIGNATURE_MAX_BYTES + 1)
    with pytest.raises(ValidationFailed) as err:
        contract_sign(actor=cashier, contract=contract, signature_png=data)
    assert "300 KB" in err.value.message_en


def test_a_signed_contract_cannot_be_signed_again(contract, cashier):
    first = png()
    contract_sign(actor=cashier, contract=contract, signature_png=first)
    with pytest.raises(Conflict) as err:
        contract_sign(actor=cashier, contract=contract, signature_png=png(300, 120))
    assert err.value.code == "contract.already_signed"
    stored = Contract.objects.get(pk=contract.pk)
    assert bytes(stored.signature) == first
    assert AuditLog.objects.filter(action="contracts.sign").count() == 1


def test_signing_needs_checkout(contract, beautician, store1, actor_for):
    with pytest.raises(PermissionDenied):
        contract_sign(actor=actor_for(beautician, store1), contract=contract, signature_png=png())
    assert not Contract.objects.get(pk=contract.pk).signed


def test_a_contract_of_a_member_of_another_store_is_not_found(
    recharge, other_store_member, hq_admin, store2, actor_for, cashier
):
    theirs = recharge(other_store_member, "500.00", actor=actor_for(hq_admin, store2)).contract
    with pytest.raises(NotFound):
        contract_get(cashier, theirs.pk)
    with pytest.raises(NotFound):
        contract_sign(actor=cashier, contract=theirs, signature_png=png())
    with pytest.raises(NotFound):
        member_contracts(cashier, other_store_member)


def test_member_contracts_lists_hers_newest_first(recharge, member, cashier):
    first = recharge(member, "1000.00").contract
    second = recharge(member, "2000.00").contract
    assert [c.pk for c in member_contracts(cashier, member)] == [second.pk, first.pk]


def test_the_pdf_is_a_pdf_with_the_contract_number(contract, cashier):
    unsigned = contract_pdf(contract)
    assert unsigned.startswith(b"%PDF")
    assert contract.number.encode() in unsigned
    signed = contract_sign(actor=cashier, contract=contract, signature_png=png())
    with_signature = contract_pdf(signed)
    assert with_signature.startswith(b"%PDF")
    assert contract.number.encode() in with_signature
    assert b"/Subtype /Image" in with_signature
    assert b"/Subtype /Image" not in unsigned
