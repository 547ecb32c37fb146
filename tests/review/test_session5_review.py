"""Review of session 5: a checkout that locked the member's rows early and the store's and organisation's rows
last (reverted before it landed, see ADR 0008) deadlocked with a refund that takes a referral reward back. The
test stays as a guard for any later change of the ledger's lock order."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
from django.db import connection

from meiye.loyalty.models import ReferralReward
from meiye.loyalty.rules import rules_settings_save
from meiye.loyalty.selectors import points_balance
from meiye.sales import services as sales_services
from meiye.sales.services import LineInput, bill_checkout, bill_refund
from tests.reference import reference_categories, reference_items
from tests.review.support import WECHAT_600, at_once, wait_for_a_blocked_backend

pytestmark = pytest.mark.usefixtures("fresh_rules_cache")


@pytest.fixture
def referral(actor_for, hq_admin, receptionist, manager, store1) -> SimpleNamespace:
    """Referral rewards of 200 / 100 points, refundable for 7 days; the care service (600.00); the store's
    cashier and manager. PostgreSQL only: these tests are about row locks."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL only (SQLite's IMMEDIATE transactions cannot deadlock)")
    hq = actor_for(hq_admin, store1)
    rules_settings_save(
        actor=hq, referral_referrer_points=200, referral_referee_points=100, referral_refund_window_days=7
    )
    return SimpleNamespace(
        cashier=actor_for(receptionist, store1),
        store_manager=actor_for(manager, store1),
        care=reference_items(hq, reference_categories(hq))["care"],
    )


@pytest.mark.django_db(transaction=True)
def test_a_referrers_checkout_and_the_refund_taking_her_referral_reward_back_do_not_deadlock(
    monkeypatch, referral, store1, make_member
):
    """Failed on PostgreSQL with ``deadlock detected`` while checkouts deferred the shared rows (SQLite's
    IMMEDIATE transactions cannot deadlock: skipped).

    A full refund of B's first service (B was referred by A) locks the store's and the organisation's rows up
    front (``_lock_refund_accounts``: B's accounts only), then ``rewards_reverse_for_bill`` ->
    ``points_take_back`` locks A's points row. A checkout of A that held A's rows while waiting for the shared
    ones made each wait for the other; a checkout that locks all its rows at once, in the ledger's order, makes
    the refund wait."""
    # given: B, referred by A, paid for a service (A got 200 referral points)
    cashier, store_manager, care = referral.cashier, referral.store_manager, referral.care
    a = make_member(store1, name="A")
    b = make_member(store1, name="B", referrer_id=a.pk)
    referred = bill_checkout(
        actor=cashier, member=b, lines=[LineInput(item_id=care.pk)], tenders=WECHAT_600, idempotency_key="b-1"
    )
    assert points_balance(a) == 200

    # when: A checks out while B's bill is refunded; A's checkout pauses once it has locked its accounts, just
    # before it posts (where the deferring checkout held A's rows but not yet the shared ones)
    real_journals_post = sales_services.journals_post
    a_holds_her_rows = threading.Event()

    def journals_post(**kwargs):  # type: ignore[no-untyped-def]
        if threading.current_thread().name == "checkout" and not a_holds_her_rows.is_set():
            a_holds_her_rows.set()
            wait_for_a_blocked_backend()  # the refund now waits on a row the checkout holds
        return real_journals_post(**kwargs)

    monkeypatch.setattr(sales_services, "journals_post", journals_post)

    def refund_b() -> None:
        a_holds_her_rows.wait(10)
        bill_refund(actor=store_manager, bill=referred, reason="不满意", idempotency_key="refund-b")

    outcomes = at_once(
        checkout=lambda: bill_checkout(
            actor=cashier, member=a, lines=[LineInput(item_id=care.pk)], tenders=WECHAT_600, idempotency_key="a-1"
        ),
        refund=refund_b,
    )

    # then: both go through, one after the other
    assert outcomes == {"checkout": "completed", "refund": "completed"}
    assert ReferralReward.objects.get(referee=b).reversed_on is not None
    assert points_balance(a) == 600  # the 200 referral points taken back, the 600 of her own bill kept


@pytest.mark.django_db(transaction=True)
def test_a_refund_locks_the_referrers_points_with_its_own_rows(monkeypatch, referral, store1, make_member):
    """With the ledger's primary-key order alone, a referrer whose accounts are older than the store's (her
    first bill created them before the store's) took her points row, then waited for the store's rows a
    refund held, while the refund — reversing her referral reward — waited for her points row: a deadlock on
    PostgreSQL. The refund now locks her points with its own rows (``referral_reversal_account_keys``)."""
    cashier, store_manager, care = referral.cashier, referral.store_manager, referral.care
    a = make_member(store1, name="A")
    bill_checkout(
        actor=cashier, member=a, lines=[LineInput(item_id=care.pk)], tenders=WECHAT_600, idempotency_key="a-0"
    )
    b = make_member(store1, name="B", referrer_id=a.pk)
    referred = bill_checkout(
        actor=cashier, member=b, lines=[LineInput(item_id=care.pk)], tenders=WECHAT_600, idempotency_key="b-1"
    )
    assert points_balance(a) == 600 + 200

    # when: the refund holds its rows while A checks out, then goes on to take A's reward back
    real_lock = sales_services._lock_refund_accounts
    refund_holds_its_rows = threading.Event()

    def lock_refund_accounts(*args, **kwargs):  # type: ignore[no-untyped-def]
        locked = real_lock(*args, **kwargs)
        refund_holds_its_rows.set()
        wait_for_a_blocked_backend()  # A's checkout now waits on a row the refund holds
        return locked

    monkeypatch.setattr(sales_services, "_lock_refund_accounts", lock_refund_accounts)

    def checkout_a() -> None:
        refund_holds_its_rows.wait(10)
        bill_checkout(
            actor=cashier, member=a, lines=[LineInput(item_id=care.pk)], tenders=WECHAT_600, idempotency_key="a-1"
        )

    outcomes = at_once(
        refund=lambda: bill_refund(actor=store_manager, bill=referred, reason="不满意", idempotency_key="refund-b"),
        checkout=checkout_a,
    )

    # then: both go through, one after the other
    assert outcomes == {"refund": "completed", "checkout": "completed"}
    assert points_balance(a) == 600 + 600  # her own two bills; the 200 referral points taken back
