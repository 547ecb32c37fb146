"""Real threads against PostgreSQL: the balance row lock makes concurrent spending safe."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection
from django.db.models import Sum

from meiye.core.errors import ApplicationError
from meiye.ledger.models import Entry
from meiye.ledger.selectors import balance_of
from meiye.ledger.services import journal_post
from meiye.ledger.verification import verify_ledger
from tests.ledger.support import ORG

THREADS = 50


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_debits_of_100_from_1000_let_exactly_ten_through(make_account, tender, fund):
    if connection.vendor != "postgresql":
        pytest.skip("row locks under real concurrency: PostgreSQL only")
    # given
    wallet = make_account()
    fund(wallet, 1_000)
    till = tender()
    start = threading.Barrier(THREADS)
    outcomes: list[str] = []

    def spend() -> None:
        try:
            start.wait()
            journal_post(organisation_id=ORG, code="wallet.spend", entries=[(wallet, -100), (till, 100)])
            outcomes.append("posted")
        except ApplicationError as error:
            outcomes.append(error.code)
        except Exception as error:  # any other failure must show up in the assertion
            outcomes.append(repr(error))
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=spend) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then
    assert Counter(outcomes) == {"posted": 10, "ledger.insufficient_balance": 40}
    assert balance_of(wallet) == 0
    assert Entry.objects.filter(account=wallet).aggregate(total=Sum("amount"))["total"] == 0
    assert Entry.objects.filter(account=wallet).count() == 11
    assert verify_ledger() == []
