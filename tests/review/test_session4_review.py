"""Review of the checkout hot-path commits (68f50e8..HEAD): each test fails while the bug it names is there."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from meiye.cards import services as card_services
from meiye.cards.models import PaymentCode
from meiye.cards.services import CODE_MAX_ATTEMPTS, payment_code_send, payment_password_set
from meiye.ledger import services as ledger_services
from meiye.ledger.models import Balance, Journal
from meiye.ledger.services import AccountKey, Posting, account_get_or_create, accounts_lock, journals_post
from tests.api.conftest import *  # noqa: F403 - the API clients and the checkout fixtures

ONE_SHOT = "/api/v1/bills/checkout/"
LEDGER_ORG = 1  # the ledger knows organisations as plain ids (tests/ledger/support.py)


# --- 2. core.db.fastwrite: one INSERT for every row, however many ----------------------------------------------

MANY_JOURNALS = 6_000  # x 11 columns: more parameters than SQLite (32,766) or PostgreSQL's protocol (65,535) takes


@pytest.mark.django_db
def test_journals_post_writes_a_batch_of_thousands_of_journals_as_bulk_create_did(request):
    """Fails on PostgreSQL (and on SQLite with its default variable limit, set here).

    ``journals_post`` used ``Journal.objects.bulk_create``, which splits the rows into statements the database
    accepts (``bulk_batch_size``; on PostgreSQL the driver bound the values client-side, with no limit).
    ``insert_rows`` writes every journal in ONE statement: 11 parameters a journal, so a nightly batch of a
    few thousand (``wallet_bonus_release --batch 3000``; 2,000 is the default) exceeds SQLite's 32,766
    variables, and 5,958 exceed the 65,535 parameters of PostgreSQL's protocol, now that parameters are bound
    server-side. The whole batch fails (logged and skipped by the job)."""
    if connection.vendor == "sqlite":
        # SQLite's own default (3.32+), as Python.org's builds have it; Debian's library raises it to 250,000.
        connection.ensure_connection()
        previous = connection.connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32_766)
        request.addfinalizer(
            lambda: (
                connection.connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, previous)
                if connection.connection is not None
                else None
            )
        )
    source_key = AccountKey("organisation", LEDGER_ORG, "CNY", "tender", may_go_negative=True)
    target_key = _wallet_key(9201)
    for key in (source_key, target_key):
        account_get_or_create(organisation_id=LEDGER_ORG, **_fields_of(key))

    with transaction.atomic():
        locked = accounts_lock(organisation_id=LEDGER_ORG, keys=[source_key, target_key])
        source, target = locked.get(source_key), locked.get(target_key)
        postings = [
            Posting(code="test.many", entries=[(source, -1), (target, 1)], idempotency_key=f"test.many:{n}")
            for n in range(MANY_JOURNALS)
        ]
        journals = journals_post(organisation_id=LEDGER_ORG, postings=postings, locked=locked, keys_claimed=True)

    assert len(journals) == MANY_JOURNALS
    assert Journal.objects.filter(code="test.many").count() == MANY_JOURNALS


# --- 3. ledger: a stale remembered account id takes a lock out of account order (PostgreSQL) --------------------


def _wallet_key(owner_id: int) -> AccountKey:
    return AccountKey("member", owner_id, "CNY", "wallet_principal")


@pytest.mark.django_db(transaction=True)
def test_a_stale_remembered_account_id_does_not_lock_out_of_account_order(monkeypatch):
    """``accounts_lock`` promises one statement in account-id order, so two operations cannot deadlock. With a
    stale remembered id (this process created the account in a transaction that rolled back; another worker
    created it since, under a new id) ``_lock_by_known_ids`` first locks the rows it finds by id — here the
    other, higher account — keeps those locks, and the identity fallback then waits for the lower one: it holds
    ``high`` while waiting for ``low``. An operation that locks ``low`` then ``high`` (the ledger's order)
    deadlocks with it; PostgreSQL aborts one of the two."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL only (SQLite's immediate transaction holds the whole database)")
    monkeypatch.setattr(ledger_services, "_KNOWN_IDS", {})  # this test's process memory only
    low_key, high_key = _wallet_key(9101), _wallet_key(9102)
    # This process opens the low account in an operation that then fails: it remembers the id of a row that
    # the rollback took away.
    with pytest.raises(RuntimeError), transaction.atomic():
        accounts_lock(organisation_id=LEDGER_ORG, keys=[low_key])
        raise RuntimeError("the operation fails after the lock")
    # The account is opened again (another worker's checkout, or a service that calls account_get_or_create),
    # then a second one, which this process locks and remembers.
    low = account_get_or_create(organisation_id=LEDGER_ORG, **_fields_of(low_key))
    high = account_get_or_create(organisation_id=LEDGER_ORG, **_fields_of(high_key))
    with transaction.atomic():
        accounts_lock(organisation_id=LEDGER_ORG, keys=[high_key])
    assert low.pk < high.pk
    # Fixed: an id is remembered only once its transaction commits, so the rolled-back one is not.
    assert ledger_services._KNOWN_IDS.get((LEDGER_ORG, low_key.identity)) in (None, low.pk)

    held, go_on = threading.Event(), threading.Event()
    outcomes: dict[str, str] = {}
    pid: dict[str, int] = {}

    def other_operation() -> None:  # locks low, then high: the ledger's order
        try:
            with transaction.atomic():
                Balance.objects.select_for_update().get(account_id=low.pk)
                held.set()
                go_on.wait(10)
                Balance.objects.select_for_update().get(account_id=high.pk)
            outcomes["other"] = "ok"
        except Exception as error:  # any failure (a deadlock) must show in the assertion
            outcomes["other"] = repr(error)
        finally:
            held.set()
            connection.close()

    def checkout_lock() -> None:
        try:
            held.wait(10)
            connection.ensure_connection()
            pid["lock"] = connection.connection.info.backend_pid
            with transaction.atomic():
                accounts_lock(organisation_id=LEDGER_ORG, keys=[low_key, high_key])
            outcomes["lock"] = "ok"
        except Exception as error:  # any failure (a deadlock) must show in the assertion
            outcomes["lock"] = repr(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=other_operation), threading.Thread(target=checkout_lock)]
    for thread in threads:
        thread.start()
    _wait_until_blocked(pid)
    go_on.set()
    for thread in threads:
        thread.join(30)

    assert outcomes == {"other": "ok", "lock": "ok"}


def _fields_of(key: AccountKey) -> dict[str, Any]:
    return {
        "owner_type": key.owner_type,
        "owner_id": key.owner_id,
        "asset": key.asset,
        "kind": key.kind,
        "may_go_negative": key.may_go_negative,
    }


def _wait_until_blocked(pid: dict[str, int]) -> None:
    """Until the locking thread's backend waits on a row lock."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if "lock" in pid:
            with connection.cursor() as cursor:
                cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid["lock"]])
                row = cursor.fetchone()
            if row is not None and row[0] == "Lock":
                return
        time.sleep(0.02)
    raise AssertionError("the lock never waited")


# --- 6. failures that must be recorded although the API's transaction rolls back ------------------------------


def test_wrong_codes_for_the_payment_password_through_the_api_use_up_the_code(
    reception_api, cashier_actor, shopper, monkeypatch
):
    """Each code allows CODE_MAX_ATTEMPTS wrong tries (``_code_use`` counts them before ``payment_password_set``
    raises). At the front desk the count stands; through the API the view's transaction rolls it back and no
    ``after_rollback`` counts it again, so a 6-digit code can be guessed without limit for its 5 minutes."""
    monkeypatch.setattr(card_services, "_new_code", lambda: "246810")
    payment_code_send(actor=cashier_actor, member=shopper, purpose="password")
    url = f"/api/v1/members/{shopper.pk}/payment-password/"

    for guess in range(CODE_MAX_ATTEMPTS):
        wrong = reception_api.post(url, {"password": "860412", "code": f"{guess:06d}"}, format="json")
        assert wrong.status_code == 400
        assert wrong.json()["code"] == "cards.code_wrong"

    after_guesses = reception_api.post(url, {"password": "860412", "code": "246810"}, format="json")

    # The code is used up: a guesser's sixth try must not set the password (at the front desk it does not).
    assert after_guesses.status_code == 400, "the 6th try on a code set the payment password"
    assert PaymentCode.objects.get(member=shopper, purpose="password").attempts >= CODE_MAX_ATTEMPTS


def test_a_wrong_payment_code_at_an_api_checkout_is_counted_on_the_code(
    reception_api, cashier_actor, shopper, care, top_up, monkeypatch
):
    """``_authorize`` counts a wrong code on the member (``failures``, counted again after the rollback) AND on
    the code (``attempts``); through the API only the first survives, so the code's own limit never applies."""
    monkeypatch.setattr(card_services, "_new_code", lambda: "246810")
    payment_code_send(actor=cashier_actor, member=shopper, purpose="password")
    payment_password_set(actor=cashier_actor, member=shopper, password="860412", code="246810")
    top_up(shopper, "1000.00")
    monkeypatch.setattr(card_services, "_new_code", lambda: "135790")
    PaymentCode.objects.filter(member=shopper).update(
        created_at=timezone.now() - timedelta(minutes=2)
    )  # past the 1-minute gap
    payment_code_send(actor=cashier_actor, member=shopper, purpose="payment")
    body = {
        "member_id": shopper.pk,
        "lines": [{"item_id": care.pk}],
        "tenders": [{"kind": "stored_value", "amount": "600.00", "payment_code": "000000"}],
    }

    response = reception_api.post(ONE_SHOT, body, format="json", HTTP_IDEMPOTENCY_KEY="wrong-code")

    assert response.status_code == 400
    assert response.json()["code"] == "wallet.payment_code_wrong"
    assert PaymentCode.objects.get(member=shopper, purpose="payment").attempts == 1
