"""The last unit of a mall item, and one member's limit, under real threads.

A redemption locks the member's points, the organisation's redeemed points and the item's stock accounts in
one statement (primary-key order) before it reads the shelf, so exactly one of many simultaneous requests
gets the last unit. On PostgreSQL these are row locks; on SQLite the IMMEDIATE transaction's write lock.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import connection

from meiye.core.errors import ApplicationError
from meiye.ledger.verification import verify_ledger
from meiye.loyalty.selectors import points_balance
from meiye.loyalty.services import verify_points_lots
from meiye.mall.models import MallRedemption
from meiye.mall.selectors import mall_item_stock
from meiye.mall.services import mall_redeem, mall_redemption_approve, mall_redemption_reject

THREADS = 8


def race(count: int, attempt: Callable[[int], object]) -> list[str]:
    start = threading.Barrier(count)
    outcomes: list[str] = []

    def run(n: int) -> None:
        try:
            start.wait()
            attempt(n)
            outcomes.append("completed")
        except ApplicationError as error:
            outcomes.append(error.code)
        except Exception as error:  # any other failure must show up in the assertion
            outcomes.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.django_db(transaction=True)
def test_the_last_unit_goes_to_exactly_one_member(cashier, make_member, store1, earn, make_item):
    # given: one unit left and eight members with 6,200 points each
    last = make_item("面膜礼盒", 5_000, stock=1)
    members = [make_member(store1) for _ in range(THREADS)]
    for member in members:
        earn(member, 6_200)

    # when they all redeem it at once
    outcomes = race(
        THREADS,
        lambda n: mall_redeem(actor=cashier, member=members[n], item=last, idempotency_key=f"last-{n}"),
    )

    # then
    assert Counter(outcomes) == {"completed": 1, "mall.out_of_stock": THREADS - 1}
    assert mall_item_stock(last) == 0
    winner = MallRedemption.objects.get()
    assert sorted(points_balance(m) for m in members) == [1_200] + [6_200] * (THREADS - 1)
    assert points_balance(winner.member) == 1_200
    assert verify_ledger() == []
    assert verify_points_lots() == []


@pytest.mark.django_db(transaction=True)
def test_one_member_racing_herself_gets_her_limit_once(cashier, member, earn, make_item):
    item = make_item("限兑一件", 1_000, stock=10, per_member_limit=1)
    earn(member, 50_000)

    outcomes = race(5, lambda n: mall_redeem(actor=cashier, member=member, item=item, idempotency_key=f"self-{n}"))

    assert Counter(outcomes) == {"completed": 1, "mall.limit_reached": 4}
    assert points_balance(member) == 49_000
    assert mall_item_stock(item) == 9
    assert verify_ledger() == []


@pytest.mark.django_db(transaction=True)
def test_the_same_redemption_sent_five_times_at_once_redeems_once(cashier, member, earn, mask_box):
    earn(member, 50_000)

    outcomes = race(5, lambda n: mall_redeem(actor=cashier, member=member, item=mask_box, idempotency_key="twin"))

    assert outcomes == ["completed"] * 5
    assert MallRedemption.objects.count() == 1
    assert points_balance(member) == 45_000
    assert mall_item_stock(mask_box) == 2
    assert verify_ledger() == []


@pytest.mark.django_db(transaction=True)
def test_approve_and_reject_at_once_decide_once(cashier, boss, hq, member, earn, make_item):
    device = make_item("美容仪", 20_000, stock=1)
    earn(member, 20_000)
    pending = mall_redeem(actor=cashier, member=member, item=device, idempotency_key="both")

    def decide(n: int) -> object:
        if n == 0:
            return mall_redemption_approve(actor=boss, redemption=pending)
        return mall_redemption_reject(actor=hq, redemption=pending, reason="no")

    outcomes = race(2, decide)

    assert sorted(outcomes) == ["completed", "mall.already_decided"]
    pending.refresh_from_db()
    if pending.status == "completed":
        assert (points_balance(member), mall_item_stock(device)) == (0, 0)
    else:
        assert (points_balance(member), mall_item_stock(device)) == (20_000, 1)
    assert verify_ledger() == []
    assert verify_points_lots() == []
