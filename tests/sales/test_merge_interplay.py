"""Checkout and refunds around a member merge (found in review)."""

from __future__ import annotations

import pytest

from meiye.core.errors import Conflict
from meiye.core.money import Money
from meiye.members.services import member_merge
from meiye.sales.models import Bill, BillStatus
from meiye.sales.services import (
    LineInput,
    TenderInput,
    bill_add_line,
    bill_checkout,
    bill_complete,
    bill_open,
    bill_refund,
)
from meiye.wallet.selectors import wallet_balance


def test_full_refund_after_merge_returns_stored_value_to_the_survivor(
    cashier, manager_at_till, hq, care, make_member, store1, recharge
):
    duplicate = make_member(store1, name="重复")
    survivor = make_member(store1, name="主")
    recharge(duplicate, "1000.00")
    bill = bill_checkout(
        actor=cashier,
        member=duplicate,
        lines=[LineInput(item_id=care.pk)],
        tenders=[TenderInput(kind="stored_value", amount=Money.parse("600.00"))],
        idempotency_key="merge-bill",
    )
    member_merge(actor=hq, survivor=survivor, merged=duplicate)
    assert wallet_balance(survivor).principal == Money.parse("400.00")

    bill_refund(actor=manager_at_till, bill=bill, reason="退款", idempotency_key="merge-refund")

    assert wallet_balance(survivor).principal == Money.parse("1000.00")
    assert wallet_balance(duplicate).total == Money(0)


def test_completing_an_open_bill_after_its_member_was_merged_is_refused_cleanly(cashier, hq, care, make_member, store1):
    duplicate, survivor = make_member(store1, name="重复"), make_member(store1, name="主")
    bill = bill_open(actor=cashier, member=duplicate)
    bill_add_line(actor=cashier, bill=bill, item=care)
    member_merge(actor=hq, survivor=survivor, merged=duplicate)

    with pytest.raises(Conflict) as exc:
        bill_complete(
            actor=cashier,
            bill=bill,
            tenders=[TenderInput(kind="cash", amount=Money.parse("600.00"))],
            idempotency_key="after-merge",
        )

    assert exc.value.code == "sales.member_inactive"
    assert Bill.objects.get(pk=bill.pk).status == BillStatus.OPEN
