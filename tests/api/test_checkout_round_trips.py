"""The one-shot API checkout's round trips: it reads its store once (with the checkout's rules, when the acting
store is named by ``X-Store-Id``) and takes no savepoint of its own inside the idempotency layer's
transaction — and a key clash still answers as before, without one."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from meiye.catalog.services import item_save
from meiye.core.idempotency import idempotency_purge
from meiye.core.money import Money
from meiye.ledger.models import Journal
from meiye.members.models import Member, MemberStatus
from meiye.org.services import store_update
from meiye.sales.models import Bill
from meiye.wallet.services import wallet_recharge
from tests.sales.support import balances, sales_state

ONE_SHOT = "/api/v1/bills/checkout/"


def _body(member, *items, tenders):
    return {"member_id": member.pk, "lines": [{"item_id": item.pk} for item in items], "tenders": tenders}


def _post(client, body, key):
    return client.post(ONE_SHOT, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def _cash_checkout(client, member, item, key):
    return _post(client, _body(member, item, tenders=[{"kind": "cash", "amount": "600.00"}]), key)


def _statements(client, body, key):
    with CaptureQueriesContext(connection) as captured:
        response = _post(client, body, key)
    return response, [query["sql"] for query in captured.captured_queries]


def test_checkout_with_the_store_header_reads_the_store_once_and_takes_one_savepoint(
    client_for, receptionist, store1, shopper, top_up, care, serum
):
    # given: a receptionist whose client names her store, and a member with 1,000.00 of stored value who has
    # paid once before (her points and growth accounts exist, as on any day but the first)
    api = client_for(receptionist, HTTP_X_STORE_ID=str(store1.pk))
    top_up(shopper, "1000.00")
    warm = _body(shopper, care, tenders=[{"kind": "wechat", "amount": "600.00"}])
    assert _post(api, warm, "till-0").status_code == 201
    body = _body(
        shopper,
        care,
        serum,
        tenders=[{"kind": "stored_value", "amount": "500.00"}, {"kind": "wechat", "amount": "350.00"}],
    )

    # when
    response, statements = _statements(api, body, "till-1")

    # then: 850.00 charged; the store row read once, with its rules; one savepoint, the idempotency layer's
    # (in production its BEGIN: the test runs inside a transaction of its own)
    assert response.status_code == 201, response.json()
    assert response.json()["payable_total"] == "850.00"
    assert len([sql for sql in statements if sql.startswith('SELECT "org_store"')]) == 1
    assert len([sql for sql in statements if sql.startswith("SAVEPOINT")]) == 1
    assert balances(shopper)["principal"] == 50_000


def test_checkout_without_the_header_reads_the_rules_in_the_checkout(reception_api, shopper, care):
    response, statements = _statements(
        reception_api, _body(shopper, care, tenders=[{"kind": "cash", "amount": "600.00"}]), "till-2"
    )

    assert response.status_code == 201, response.json()
    store_reads = [sql for sql in statements if sql.startswith('SELECT "org_store"')]
    assert len(store_reads) == 2  # the first visible store, then the checkout's read with the rules
    assert "sales_salessettings" in store_reads[1]


def test_checkout_in_an_inactive_store_named_by_the_header_is_refused(
    client_for, receptionist, hq_actor, store1, shopper, care
):
    store_update(actor=hq_actor, store=store1, is_active=False)
    api = client_for(receptionist, HTTP_X_STORE_ID=str(store1.pk))

    response = _cash_checkout(api, shopper, care, "till-3")

    assert (response.status_code, response.json()["code"]) == (409, "sales.store_inactive")
    assert Bill.objects.count() == 0


def test_checkout_in_a_store_she_may_not_see_is_not_found(client_for, receptionist, store2, shopper, care):
    api = client_for(receptionist, HTTP_X_STORE_ID=str(store2.pk))

    response = _cash_checkout(api, shopper, care, "till-4")

    assert (response.status_code, response.json()["code"]) == (404, "store.not_found")
    assert Bill.objects.count() == 0


def test_a_journal_key_taken_by_a_recharge_is_a_409_and_writes_nothing(
    client_for, receptionist, hq_actor, store1, shopper, care
):
    # given: a recharge of 1,000.00 under "till-5": its journal took "till-5:cny", the key the checkout's money
    # journal would take
    wallet_recharge(
        actor=hq_actor,
        member=shopper,
        amount=Money.parse("1000.00"),
        bonus=Money(0),
        tender="wechat",
        idempotency_key="till-5",
    )
    api = client_for(receptionist, HTTP_X_STORE_ID=str(store1.pk))
    before, journals = sales_state(), Journal.objects.count()

    # when: a checkout of 600.00 from stored value under "till-5"
    response = _post(api, _body(shopper, care, tenders=[{"kind": "stored_value", "amount": "600.00"}]), "till-5")

    # then: refused with the ledger's code (not a server error), and nothing written or charged
    assert response.status_code == 409, response.json()
    assert response.json()["code"] == "ledger.idempotency_conflict"
    assert "till-5:cny" in response.json()["detail"]
    assert sales_state() == before
    assert Journal.objects.count() == journals
    assert balances(shopper)["principal"] == 100_000


def test_a_retry_after_the_purge_gets_its_bill_although_the_member_was_stopped_since(
    client_for, receptionist, store1, shopper, top_up, care
):
    """The API skips the service's replay check (its own record was just found missing). A refusal before the
    bill's INSERT — here her stored value, refused because she was stopped — must not hide the bill that holds
    the key: the retry answers that bill, and a new request with the key is still refused."""
    # given: 600.00 paid from stored value under "till-6"; then the records are purged and she is stopped
    top_up(shopper, "1000.00")
    api = client_for(receptionist, HTTP_X_STORE_ID=str(store1.pk))
    body = _body(shopper, care, tenders=[{"kind": "stored_value", "amount": "600.00"}])
    first = _post(api, body, "till-6")
    assert first.status_code == 201, first.json()
    assert idempotency_purge(today=timezone.localdate() + timedelta(days=31)).deleted >= 1
    Member.objects.filter(pk=shopper.pk).update(status=MemberStatus.INACTIVE)
    before = sales_state()

    # when: the till retries the same request, then sends another one under the same key
    again = _post(api, body, "till-6")
    other = _cash_checkout(api, shopper, care, "till-6")

    # then: the same bill, charged once; the other request is refused for the key, and writes nothing
    assert again.status_code == 201, again.json()
    assert again.json()["number"] == first.json()["number"]
    assert (other.status_code, other.json()["code"]) == (409, "idempotency.key_reused")
    assert Bill.objects.count() == 1
    assert balances(shopper)["principal"] == 40_000
    assert sales_state() == before


def test_a_retry_after_the_purge_gets_its_bill_although_the_price_changed_since(
    client_for, receptionist, store1, hq_actor, shopper, care
):
    """On PostgreSQL the one-shot checkout's bill INSERT is answered with its balance lock (one round trip), so a
    refusal of the tenders comes before the checkout knows whether a bill already holds its key. The retry of a
    paid request whose price has changed since must still answer that bill, not "tenders do not match"."""
    # given: 600.00 paid in cash under "till-7"; the records are purged and the facial now costs 650.00
    api = client_for(receptionist, HTTP_X_STORE_ID=str(store1.pk))
    first = _cash_checkout(api, shopper, care, "till-7")
    assert first.status_code == 201, first.json()
    assert idempotency_purge(today=timezone.localdate() + timedelta(days=31)).deleted >= 1
    item_save(
        actor=hq_actor,
        code=care.code,
        name=care.name,
        category=care.category,
        price=Money.parse("650.00"),
        duration_minutes=care.duration_minutes,
    )
    before = sales_state()

    # when: the till retries the same request; then a new request with a new key and the old amount
    again = _cash_checkout(api, shopper, care, "till-7")
    stale = _cash_checkout(api, shopper, care, "till-8")

    # then: the same bill, nothing written; the new request is refused for its tenders
    assert again.status_code == 201, again.json()
    assert again.json()["number"] == first.json()["number"]
    assert again.json()["payable_total"] == "600.00"
    assert (stale.status_code, stale.json()["code"]) == (400, "sales.tender_mismatch")
    assert Bill.objects.count() == 1
    assert sales_state() == before
