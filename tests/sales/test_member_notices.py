"""The messages a completed bill sends its member once it has committed: the stored-value charge (S-17) and
the points earned (issue 4, notifications)."""

from __future__ import annotations

import pytest

from meiye.core.errors import ApplicationError
from meiye.core.money import Money
from meiye.notify.models import Message
from meiye.sales.services import LineInput, TenderInput, bill_checkout


def test_S17_each_stored_value_charge_sends_an_sms_with_the_amount_and_the_new_balance(
    cashier, member, care, recharge, django_capture_on_commit_callbacks
):
    # given: 1,000.00 of stored value (the recharge sends its own message)
    recharge(member, "1000.00")
    Message.objects.all().delete()

    # when: a 600.00 facial is paid from stored value
    with django_capture_on_commit_callbacks(execute=True):
        bill = bill_checkout(
            actor=cashier,
            member=member,
            lines=[LineInput(item_id=care.pk)],
            tenders=[TenderInput(kind="stored_value", amount=Money.parse("600.00"))],
            idempotency_key="s17-charge",
        )

    # then: one SMS with the amount and the balance after it
    charge = Message.objects.get(member=member, event="wallet.charge")
    assert charge.channel == "sms"
    assert "¥600.00" in charge.body
    assert "¥400.00" in charge.body
    # a replay of the checkout sends nothing more
    with django_capture_on_commit_callbacks(execute=True):
        bill_checkout(
            actor=cashier,
            member=member,
            lines=[LineInput(item_id=care.pk)],
            tenders=[TenderInput(kind="stored_value", amount=Money.parse("600.00"))],
            idempotency_key="s17-charge",
        )
    assert Message.objects.filter(member=member, event="wallet.charge").count() == 1
    assert bill.points_earned > 0


def test_a_paid_bill_tells_the_member_the_points_she_earned(cashier, member, care, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        bill = bill_checkout(
            actor=cashier,
            member=member,
            lines=[LineInput(item_id=care.pk)],
            tenders=[TenderInput(kind="wechat", amount=Money.parse("600.00"))],
            idempotency_key="earned",
        )

    earned = Message.objects.get(member=member, event="points.earned")
    assert f"{bill.points_earned:,}" in earned.body
    assert not Message.objects.filter(member=member, event="wallet.charge").exists()


def test_a_refused_checkout_sends_nothing(cashier, member, care, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ApplicationError) as refused:
        bill_checkout(
            actor=cashier,
            member=member,
            lines=[LineInput(item_id=care.pk)],
            tenders=[TenderInput(kind="stored_value", amount=Money.parse("600.00"))],
            idempotency_key="refused",
        )
    assert refused.value.code == "wallet.insufficient_balance"
    assert not Message.objects.filter(member=member).exists()
