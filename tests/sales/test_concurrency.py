"""S-24: 50 simultaneous 100.00 checkouts against a wallet holding 1,000.00, with real threads.

Each checkout locks the store's bill sequence, then the store's sales accounts, then the member's wallet
rows (``wallet_split``), so the balance check and the posting see the same balance. On PostgreSQL
that is row locks; on SQLite each transaction is IMMEDIATE (it takes the write lock at BEGIN) and the
others wait in the busy timeout — the same rule holds with the same 50 threads.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection
from django.db.models import Sum

from meiye.catalog.services import item_save
from meiye.core.errors import ApplicationError
from meiye.core.money import Money
from meiye.ledger.models import Entry
from meiye.ledger.verification import verify_ledger
from meiye.loyalty.services import verify_points_lots
from meiye.sales.models import Bill, BillStatus
from meiye.sales.services import LineInput, TenderInput, bill_checkout, bill_refund
from meiye.wallet.services import wallet_accounts
from tests.sales.support import balances

THREADS = 50


@pytest.mark.django_db(transaction=True)
def test_S24_concurrent_charges(cashier, brows, member, recharge):
    # given: a 100.00 service and a wallet holding 1,000.00
    recharge(member, "1000.00")
    start = threading.Barrier(THREADS)
    outcomes: list[str] = []

    def charge(n: int) -> None:
        try:
            start.wait()
            bill_checkout(
                actor=cashier,
                member=member,
                lines=[LineInput(item_id=brows.pk)],
                tenders=[TenderInput(kind="stored_value", amount=Money.parse("100.00"))],
                idempotency_key=f"s24-{n}",
            )
            outcomes.append("completed")
        except ApplicationError as error:
            outcomes.append(error.code)
        except Exception as error:  # any other failure must show up in the assertion
            outcomes.append(repr(error))
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=charge, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then: exactly ten go through, the rest are refused as insufficient
    assert Counter(outcomes) == {"completed": 10, "wallet.insufficient_balance": 40}
    assert balances(member)["principal"] == 0
    principal = wallet_accounts(member=member).principal
    assert Entry.objects.filter(account=principal).aggregate(total=Sum("amount"))["total"] == 0
    assert Entry.objects.filter(account=principal).count() == 11
    # ten bills, numbered without gaps or duplicates
    numbers = sorted(Bill.objects.filter(status=BillStatus.COMPLETED).values_list("number", flat=True))
    assert numbers == [f"S1-{n:06d}" for n in range(1, 11)]
    assert Bill.objects.count() == 10
    assert balances(member)["points"] == 1_000
    assert verify_ledger() == []
    assert verify_points_lots() == []


@pytest.mark.django_db(transaction=True)
def test_S23_the_same_checkout_sent_five_times_at_once_charges_once(cashier, member, care, recharge):
    # given
    recharge(member, "1000.00")
    start = threading.Barrier(5)
    outcomes: list[object] = []

    def send() -> None:
        try:
            start.wait()
            bill = bill_checkout(
                actor=cashier,
                member=member,
                lines=[LineInput(item_id=care.pk)],
                tenders=[TenderInput(kind="stored_value", amount=Money.parse("600.00"))],
                idempotency_key="twin",
            )
            outcomes.append(bill.pk)
        except Exception as error:
            outcomes.append(repr(error))
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=send) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then: every sender gets the same bill; the wallet is charged once
    assert len(set(outcomes)) == 1 and isinstance(outcomes[0], int)
    assert Bill.objects.count() == 1
    assert balances(member)["principal"] == 40_000
    assert verify_ledger() == []


@pytest.mark.django_db(transaction=True)
def test_the_same_refund_sent_five_times_at_once_refunds_once(cashier, manager_at_till, member, care, recharge):
    # given
    recharge(member, "1000.00")
    bill = bill_checkout(
        actor=cashier,
        member=member,
        lines=[LineInput(item_id=care.pk)],
        tenders=[TenderInput(kind="stored_value", amount=Money.parse("600.00"))],
        idempotency_key="to-refund",
    )
    start = threading.Barrier(5)
    outcomes: list[object] = []

    def send() -> None:
        try:
            start.wait()
            outcomes.append(bill_refund(actor=manager_at_till, bill=bill, reason="退款", idempotency_key="r").pk)
        except Exception as error:
            outcomes.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(outcomes)) == 1 and isinstance(outcomes[0], int)
    assert balances(member) == {"principal": 100_000, "bonus": 0, "points": 0, "growth": 0}
    assert verify_ledger() == []


@pytest.mark.django_db(transaction=True)
def test_checkouts_and_recharges_of_one_member_at_once_never_deadlock(
    cashier, make_member, store1, member, brows, recharge
):
    """Checkouts and recharges lock the store's and the member's balance rows in one statement each, in the
    ledger's order. Mixed at once on one member and one store: no deadlock."""
    other = make_member(store1, name="周小姐")
    recharge(member, "1000.00")
    start = threading.Barrier(THREADS_MIXED)
    outcomes: list[str] = []

    def work(n: int) -> None:
        try:
            start.wait()
            if n % 3 == 1:
                recharge(member, "100.00")
            else:
                bill_checkout(
                    actor=cashier,
                    member=member if n % 3 == 0 else other,
                    lines=[LineInput(item_id=brows.pk)],
                    tenders=[
                        TenderInput(kind="stored_value", amount=Money.parse("100.00"))
                        if n % 3 == 0
                        else TenderInput(kind="wechat", amount=Money.parse("100.00"))
                    ],
                    idempotency_key=f"mixed-{n}",
                )
            outcomes.append("done")
        except Exception as error:  # a deadlock or any other failure shows up in the assertion
            outcomes.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS_MIXED)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Counter(outcomes) == {"done": THREADS_MIXED}
    numbers = sorted(Bill.objects.filter(status=BillStatus.COMPLETED).values_list("number", flat=True))
    assert numbers == [f"S1-{n:06d}" for n in range(1, 17)]
    assert verify_ledger() == []
    assert verify_points_lots() == []


THREADS_MIXED = 24


@pytest.fixture
def brows(hq, categories):
    """A 100.00 service."""
    return item_save(
        actor=hq,
        code="brows",
        name="修眉",
        category=categories["basic_care"],
        price=Money.parse("100.00"),
        duration_minutes=15,
    )
