"""Payment lock-out under real threads: simultaneous wrong passwords each count (the member's lock-out row is
locked), so ten at once end in a lock, never in lost counts; simultaneous issues give one live card."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import connection

from meiye.cards.models import MemberCard, PaymentPassword
from meiye.cards.services import card_issue, payment_code_send, payment_password_set, stored_value_authorize
from meiye.core.errors import ApplicationError


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
def test_simultaneous_wrong_passwords_all_count(receptionist, store1, actor_for, make_member, codes):
    cashier = actor_for(receptionist, store1)
    member = make_member(store1, phone="13800135678")
    payment_code_send(actor=cashier, member=member, purpose="password")
    payment_password_set(actor=cashier, member=member, password="135790", code=codes.last)

    outcomes = race(7, lambda n: stored_value_authorize(actor=cashier, member=member, password="999000"))

    counted = Counter(outcomes)
    assert counted["wallet.payment_password_wrong"] == 4
    assert counted["wallet.payment_locked"] == 3  # the fifth locks; the two after it find the lock
    assert PaymentPassword.objects.get(member=member).locked_until is not None


@pytest.mark.django_db(transaction=True)
def test_simultaneous_issues_give_one_live_card(receptionist, store1, actor_for, make_member):
    cashier = actor_for(receptionist, store1)
    member = make_member(store1)

    outcomes = race(4, lambda n: card_issue(actor=cashier, member=member, idempotency_key=f"issue-{n}"))

    assert Counter(outcomes)["completed"] == 1
    assert set(outcomes) <= {"completed", "card.already_has_card", "card.number_taken"}
    assert MemberCard.objects.filter(member=member).count() == 1
