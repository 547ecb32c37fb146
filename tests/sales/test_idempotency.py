"""S-23: the same checkout twice with one key creates one bill and charges once."""

from __future__ import annotations

import pytest

from meiye.core.errors import Conflict
from meiye.core.money import Money
from meiye.ledger.verification import verify_ledger
from meiye.sales.models import Bill
from meiye.sales.services import LineInput, TenderInput, bill_add_line, bill_checkout, bill_complete, bill_open
from tests.sales.support import balances, sales_state


def test_S23_idempotent_checkout(cashier, member, care, recharge):
    # given
    recharge(member, "1000.00")
    request = {
        "actor": cashier,
        "member": member,
        "lines": [LineInput(item_id=care.pk)],
        "tenders": [TenderInput(kind="stored_value", amount=Money.parse("600.00"))],
        "idempotency_key": "s23-key",
    }
    first = bill_checkout(**request)
    state = sales_state()

    # when: the same request again
    again = bill_checkout(**request)

    # then: one bill, charged once
    assert again.pk == first.pk
    assert Bill.objects.count() == 1
    assert balances(member) == {"principal": 40_000, "bonus": 0, "points": 600, "growth": 60_000}
    assert sales_state() == state

    # when: the same key with a different body
    with pytest.raises(Conflict) as refused:
        bill_checkout(**{**request, "tenders": [TenderInput(kind="cash", amount=Money.parse("600.00"))]})

    # then: refused, nothing written
    assert refused.value.code == "idempotency.key_reused"
    assert sales_state() == state
    assert verify_ledger() == []


def test_S23_idempotent_completion_of_an_open_bill(cashier, care):
    bill = bill_open(actor=cashier)
    bill_add_line(actor=cashier, bill=bill, item=care)
    tenders = [TenderInput(kind="cash", amount=Money.parse("600.00"))]
    first = bill_complete(actor=cashier, bill=bill, tenders=tenders, idempotency_key="complete-1")
    state = sales_state()

    assert bill_complete(actor=cashier, bill=bill, tenders=tenders, idempotency_key="complete-1").pk == first.pk
    assert sales_state() == state
    with pytest.raises(Conflict) as refused:
        bill_complete(
            actor=cashier,
            bill=bill,
            tenders=[TenderInput(kind="card", amount=Money(60_000))],
            idempotency_key="complete-1",
        )
    assert refused.value.code == "idempotency.key_reused"
    assert sales_state() == state
    assert verify_ledger() == []


def test_a_failed_checkout_leaves_the_key_free_for_a_retry(cashier, member, care, recharge):
    # given: not enough stored value
    recharge(member, "100.00")
    lines = [LineInput(item_id=care.pk)]
    with pytest.raises(Exception):  # noqa: B017 - the refusal itself is tested elsewhere
        bill_checkout(
            actor=cashier,
            member=member,
            lines=lines,
            tenders=[TenderInput(kind="stored_value", amount=Money(60_000))],
            idempotency_key="retry-me",
        )

    # when: the cashier takes cash instead, with the same key
    bill = bill_checkout(
        actor=cashier,
        member=member,
        lines=lines,
        tenders=[
            TenderInput(kind="stored_value", amount=Money(10_000)),
            TenderInput(kind="cash", amount=Money(50_000)),
        ],
        idempotency_key="retry-me",
    )

    # then
    assert bill.payable_total_fen == 60_000
    assert balances(member)["principal"] == 0
    assert verify_ledger() == []
