"""Review of session 6 (ADR 0009: shared accounts; the bill number taken last): guards found by the review."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from meiye.loyalty.rules import rules_settings_save
from meiye.sales import services as sales_services
from meiye.sales.models import Bill
from meiye.sales.services import LineInput, bill_checkout, bill_open
from tests.reference import reference_categories, reference_items
from tests.review.support import WECHAT_600, at_once, wait_for_a_blocked_backend

pytestmark = pytest.mark.usefixtures("fresh_rules_cache")


@pytest.mark.django_db(transaction=True)
def test_a_one_shot_checkout_of_a_referred_member_and_a_bill_opened_for_her_do_not_deadlock(
    monkeypatch, actor_for, hq_admin, receptionist, store1, make_member
):
    """The one-shot checkout takes the store's bill sequence last, after ``rewards_after_bill`` has locked the
    referred member's row; ``bill_open`` takes the same sequence, and its bill's foreign key check takes
    ``FOR KEY SHARE`` on her row (at COMMIT: Django's foreign keys are deferred). With ``FOR UPDATE`` on the
    member (which blocks KEY SHARE) that was a deadlock; member rows are now locked ``FOR NO KEY UPDATE``
    and the sequence is every transaction's last lock (``bill_open`` numbers its bill last too)."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL only")
    hq = actor_for(hq_admin, store1)
    rules_settings_save(actor=hq, referral_referrer_points=200, referral_referee_points=100)
    cashier = actor_for(receptionist, store1)
    care = reference_items(hq, reference_categories(hq))["care"]
    a = make_member(store1, name="A")
    b = make_member(store1, name="B", referrer_id=a.pk)
    # the store's bill sequence row exists (its first bill)
    bill_checkout(
        actor=cashier, member=a, lines=[LineInput(item_id=care.pk)], tenders=WECHAT_600, idempotency_key="a-0"
    )

    real_next_number, real_number_bill = sales_services._next_number, sales_services._number_bill
    holds_member = threading.Event()

    def before_the_number() -> None:
        if threading.current_thread().name == "checkout" and not holds_member.is_set():
            holds_member.set()  # rewards_after_bill has locked B's row by now
            wait_for_a_blocked_backend()  # bill_open holds the sequence and waits for B's row

    def next_number(store):  # type: ignore[no-untyped-def]
        before_the_number()
        return real_next_number(store)

    def number_bill(store, bill, *fields):  # type: ignore[no-untyped-def]  # PostgreSQL: taken and written at once
        before_the_number()
        return real_number_bill(store, bill, *fields)

    monkeypatch.setattr(sales_services, "_next_number", next_number)
    monkeypatch.setattr(sales_services, "_number_bill", number_bill)

    def open_for_b() -> None:
        assert holds_member.wait(10)
        bill_open(actor=cashier, member=b)

    outcomes = at_once(
        checkout=lambda: bill_checkout(
            actor=cashier, member=b, lines=[LineInput(item_id=care.pk)], tenders=WECHAT_600, idempotency_key="b-1"
        ),
        open=open_for_b,
    )

    assert outcomes == {"checkout": "completed", "open": "completed"}, outcomes
    assert not Bill.objects.filter(number__startswith=sales_services.PROVISIONAL_NUMBER).exists()
