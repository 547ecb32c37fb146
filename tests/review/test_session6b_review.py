"""Review of 06b6959 (the bill sequence is every transaction's last lock): guards found by the review.

``gift_card_after_refund`` locked the card with ``select_for_update().select_related("store")`` and no ``of=``,
so PostgreSQL also locked the card's selling STORE row ``FOR UPDATE`` until the refund committed. That conflicts
with ``FOR KEY SHARE``: every bill of the store checks its deferred ``store_id`` foreign key at COMMIT, while it
holds the store's bill sequence, so it waited for the refund and the store's other checkouts queued behind it;
and two refunds, each of a bill paid with cards of two stores in opposite order, deadlocked on the store rows.
The lock now names its own table (``of=("self",)``).
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from meiye.core.money import Money
from meiye.giftcards import services as giftcard_services
from meiye.giftcards.services import gift_card_sell
from meiye.sales.models import Bill
from meiye.sales.services import LineInput, TenderInput, bill_checkout, bill_open, bill_refund
from tests.reference import reference_categories, reference_items
from tests.review.support import start, wait_for_a_blocked_backend

pytestmark = pytest.mark.usefixtures("fresh_rules_cache")


def _sell(actor, key: str):  # type: ignore[no-untyped-def]
    (card,) = gift_card_sell(
        actor=actor,
        face=Money.parse("500.00"),
        price=Money.parse("450.00"),
        tender="cash",
        expires_on=timezone.localdate() + timedelta(days=365),
        idempotency_key=key,
    )
    return card


@pytest.mark.django_db(transaction=True)
def test_a_gift_card_refund_does_not_hold_up_the_commit_of_a_bill_of_the_cards_store(
    monkeypatch, actor_for, hq_admin, receptionist, manager, store1, make_member
):
    """While a gift-card refund is between its card lock (which also locks the card's store row FOR UPDATE)
    and its COMMIT, ``bill_open`` in that store holds the store's bill sequence and cannot commit: its bill's
    deferred FK check wants FOR KEY SHARE on the store row. A one-shot checkout of the same store then waits
    on the sequence. The sequence holder waits for another lock, which ADR/``_insert_bill`` say never happens."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL only")
    hq = actor_for(hq_admin, store1)
    cashier = actor_for(receptionist, store1)
    refunder = actor_for(manager, store1)
    care = reference_items(hq, reference_categories(hq))["care"]
    member = make_member(store1, name="A")
    card = _sell(cashier, "sell-1")
    paid = bill_checkout(
        actor=cashier,
        member=member,
        lines=[LineInput(item_id=care.pk)],
        tenders=[
            TenderInput(kind="gift_card", amount=Money.parse("300.00"), gift_card_code=card.code),
            TenderInput(kind="wechat", amount=Money.parse("300.00")),
        ],
        idempotency_key="paid",
    )

    holding = threading.Event()
    release = threading.Event()
    real_local_today = giftcard_services.local_today

    def local_today(store):  # type: ignore[no-untyped-def]
        # gift_card_after_refund calls this right after its card (and store) lock
        if threading.current_thread().name == "refund" and not holding.is_set():
            holding.set()
            release.wait(20)
        return real_local_today(store)

    monkeypatch.setattr(giftcard_services, "local_today", local_today)

    outcomes: dict[str, str] = {}
    refund = start(
        outcomes, "refund", lambda: bill_refund(actor=refunder, bill=paid, reason="r", idempotency_key="refund")
    )
    assert holding.wait(10)
    opener = start(outcomes, "open", lambda: bill_open(actor=cashier, member=member))
    opener.join(3)
    open_finished_while_refund_held = not opener.is_alive()
    checkout = None
    if not open_finished_while_refund_held:
        # bill_open holds the sequence: a checkout of the store now queues on it too
        checkout = start(
            outcomes,
            "checkout",
            lambda: bill_checkout(
                actor=cashier,
                lines=[LineInput(item_id=care.pk)],
                tenders=[TenderInput(kind="cash", amount=Money.parse("600.00"))],
                idempotency_key="walk-in",
            ),
        )
        wait_for_a_blocked_backend(backends=2)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT l.locktype, coalesce(l.relation::regclass::text, ''), left(a.query, 60) FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid WHERE NOT l.granted ORDER BY a.query"
            )
            blocked = cursor.fetchall()
    release.set()
    for thread in (refund, opener, *([checkout] if checkout else [])):
        thread.join(30)

    assert all(v == "completed" for v in outcomes.values()), outcomes
    assert not Bill.objects.filter(number__startswith="~").exists()
    assert open_finished_while_refund_held, (
        f"bill_open (holding the store's bill sequence) waited at COMMIT for the gift-card refund's FOR UPDATE on "
        f"the store row; waiting: {blocked}"
    )


@pytest.mark.django_db(transaction=True)
def test_two_gift_card_refunds_with_cards_of_two_stores_do_not_deadlock(
    monkeypatch, actor_for, hq_admin, receptionist, receptionist2, manager, store1, store2, make_member
):
    """Bill X was paid with a card sold at store 1 then one sold at store 2; bill Y the other way round. Each
    refund locks its first card's store row FOR UPDATE (select_related without of=), then its second's."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL only")
    hq = actor_for(hq_admin, store1)
    cashier = actor_for(receptionist, store1)
    cashier2 = actor_for(receptionist2, store2)
    refunder = actor_for(manager, store1)
    care = reference_items(hq, reference_categories(hq))["care"]
    member = make_member(store1, name="A")
    a1, a2 = _sell(cashier, "s1-a"), _sell(cashier, "s1-b")
    b1, b2 = _sell(cashier2, "s2-a"), _sell(cashier2, "s2-b")

    def pay(first, second, key: str) -> Bill:  # type: ignore[no-untyped-def]
        return bill_checkout(
            actor=cashier,
            member=member,
            lines=[LineInput(item_id=care.pk)],
            tenders=[
                TenderInput(kind="gift_card", amount=Money.parse("300.00"), gift_card_code=first.code),
                TenderInput(kind="gift_card", amount=Money.parse("300.00"), gift_card_code=second.code),
            ],
            idempotency_key=key,
        )

    x, y = pay(a1, b1, "x"), pay(b2, a2, "y")

    both_hold_their_first = threading.Barrier(2, timeout=10)
    paused: set[str] = set()
    real_local_today = giftcard_services.local_today

    def local_today(store):  # type: ignore[no-untyped-def]
        name = threading.current_thread().name
        if name.startswith("refund") and name not in paused:
            paused.add(name)
            both_hold_their_first.wait()  # each holds its first card's store row
        return real_local_today(store)

    monkeypatch.setattr(giftcard_services, "local_today", local_today)

    outcomes: dict[str, str] = {}
    threads = [
        start(outcomes, "refund-x", lambda: bill_refund(actor=refunder, bill=x, reason="r", idempotency_key="rx")),
        start(outcomes, "refund-y", lambda: bill_refund(actor=refunder, bill=y, reason="r", idempotency_key="ry")),
    ]
    for thread in threads:
        thread.join(30)

    assert outcomes == {"refund-x": "completed", "refund-y": "completed"}, outcomes
