"""One gift card paid from several bills at once, under real threads: the card's balance row is locked before the
check, so the card is never spent twice (PostgreSQL row locks; SQLite's IMMEDIATE transaction)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import connection

from meiye.core.errors import ApplicationError
from meiye.core.money import Money
from meiye.giftcards.models import GiftCard, GiftCardStatus, GiftCardUse
from meiye.giftcards.selectors import gift_card_balance
from meiye.ledger.verification import verify_ledger

THREADS = 6


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
def test_a_card_is_spent_once_however_many_bills_race_for_it(sell, pay):
    [card] = sell("300.00", multi_use=True)

    outcomes = race(THREADS, lambda n: pay(GiftCard.objects.get(pk=card.pk), 20_000, bill_id=900 + n))

    assert Counter(outcomes) == {"completed": 1, "giftcard.insufficient": THREADS - 1}
    assert gift_card_balance(card) == Money(10_000)
    assert GiftCardUse.objects.count() == 1
    assert verify_ledger() == []


@pytest.mark.django_db(transaction=True)
def test_a_single_use_card_is_used_once(sell, pay):
    [card] = sell("300.00", multi_use=False)  # each bill reads the card before the lock, as the checkout does

    outcomes = race(THREADS, lambda n: pay(GiftCard.objects.get(pk=card.pk), 5_000, bill_id=950 + n))

    assert Counter(outcomes) == {"completed": 1, "giftcard.used_up": THREADS - 1}
    card.refresh_from_db()
    assert card.status == GiftCardStatus.USED_UP
    assert gift_card_balance(card) == Money(0)
    assert verify_ledger() == []
