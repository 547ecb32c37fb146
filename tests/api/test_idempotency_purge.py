"""A purged HTTP idempotency record cannot cause a double charge: bills and refunds keep their own keys, so a
retry after the purge gets the same bill (or refund) from the service and nothing moves again."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from meiye.core.idempotency import idempotency_purge
from meiye.core.models import IdempotencyRecord
from meiye.sales.models import Bill, Refund
from tests.sales.support import balances, sales_state

ONE_SHOT = "/api/v1/bills/checkout/"


def _post(client, url, body, key):
    return client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def _purge_everything() -> int:
    return idempotency_purge(today=timezone.localdate() + timedelta(days=31)).deleted


def test_checkout_replayed_after_the_purge_returns_the_same_bill_and_charges_nothing(
    reception_api, shopper, top_up, care, serum
):
    # given: a one-shot checkout of 850.00, 500.00 from stored value and 350.00 by WeChat
    top_up(shopper, "1000.00")
    body = {
        "member_id": shopper.pk,
        "lines": [{"item_id": care.pk}, {"item_id": serum.pk}],
        "tenders": [{"kind": "stored_value", "amount": "500.00"}, {"kind": "wechat", "amount": "350.00"}],
    }
    first = _post(reception_api, ONE_SHOT, body, "till-7-0001")
    assert first.status_code == 201, first.json()
    after_first = balances(shopper)
    state = sales_state()

    # when: the stored HTTP answer is purged, then the client retries with the same key
    assert _purge_everything() == 1
    again = _post(reception_api, ONE_SHOT, body, "till-7-0001")

    # then: the same bill, charged once
    assert again.status_code == 201, again.json()
    assert "Idempotent-Replayed" not in again  # not from the stored answer: the service found its bill
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["number"] == first.json()["number"]
    assert Bill.objects.count() == 1
    assert (
        balances(shopper)
        == after_first
        == {
            "principal": 50_000,
            "bonus": 0,
            "points": after_first["points"],
            "growth": 85_000,
        }
    )
    assert sales_state() == state
    assert IdempotencyRecord.objects.filter(key="till-7-0001").count() == 1  # the answer is stored again

    # and the same key with another body is still refused, by the bill's own key
    changed = _post(reception_api, ONE_SHOT, {**body, "lines": [{"item_id": care.pk}]}, "till-7-0001")
    assert changed.status_code == 409
    assert changed.json()["code"] == "idempotency.key_reused"
    assert sales_state() == state


def test_refund_replayed_after_the_purge_returns_the_same_refund(manager_api, shopper, care):
    bill = _post(
        manager_api,
        ONE_SHOT,
        {"member_id": shopper.pk, "lines": [{"item_id": care.pk}], "tenders": [{"kind": "cash", "amount": "600.00"}]},
        "till-7-0002",
    ).json()
    refund_url = f"/api/v1/bills/{bill['id']}/refund/"
    first = _post(manager_api, refund_url, {"reason": "顾客改约"}, "refund-7-0002")
    assert first.status_code == 201, first.json()
    state = sales_state()

    assert _purge_everything() == 2
    again = _post(manager_api, refund_url, {"reason": "顾客改约"}, "refund-7-0002")

    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert Refund.objects.count() == 1
    assert sales_state() == state


def test_a_checkout_without_payment_secrets_does_not_look_its_key_up_twice(reception_api, shopper, top_up, care):
    """@idempotent has just found the key unused in the same transaction: the service's own replay check is
    skipped (a bill holding the key is still found when its insert clashes, as above)."""
    top_up(shopper, "1000.00")
    body = {
        "member_id": shopper.pk,
        "lines": [{"item_id": care.pk}],
        "tenders": [{"kind": "stored_value", "amount": "600.00"}],
    }
    with CaptureQueriesContext(connection) as ctx:
        assert _post(reception_api, ONE_SHOT, body, "till-7-0002").status_code == 201

    assert not [q for q in ctx.captured_queries if q["sql"].startswith('SELECT "sales_bill"')]
