# ruff: noqa: F811 - the API fixtures are imported into this module
"""Review of ef149d6 (the API checkout reads its store once and takes no savepoint of its own; key clashes are
INSERTs that write nothing, ``fastwrite.insert_rows_or_skip``)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from meiye.core.db.fastwrite import insert_rows, insert_rows_or_skip
from meiye.core.idempotency import idempotency_purge
from meiye.core.models import IdempotencyRecord
from meiye.promotions.services import CouponTemplateInput, coupon_issue, coupon_template_save
from meiye.sales import services as sales_services
from meiye.sales.models import Bill
from tests.api.conftest import client_for, token_for  # noqa: F401 - fixtures
from tests.api.conftest_sales import (  # noqa: F401 - fixtures
    care,
    hq_actor,
    ref_categories,
    ref_items,
    serum,
    setup_keys,
    shopper,
    top_up,
)
from tests.review.support import wait_for_a_blocked_backend
from tests.sales.support import balances

pytestmark = pytest.mark.usefixtures("fresh_rules_cache")

ONE_SHOT = "/api/v1/bills/checkout/"


def _body(member, *items, amount):
    return {
        "member_id": member.pk,
        "lines": [{"item_id": item.pk} for item in items],
        "tenders": [{"kind": "stored_value", "amount": amount}],
    }


def _race(monkeypatch, first_api, second_api, first_body, second_body, key):
    """The first request stops after its bill's INSERT until the second waits on that row (its own INSERT of
    the same key), then commits; the second goes on. Returns both responses."""
    real_complete = sales_services._complete
    inserted = threading.Event()

    def complete(*args, **kwargs):  # type: ignore[no-untyped-def]
        if threading.current_thread().name == "first":
            inserted.set()
            assert wait_for_a_blocked_backend(), "the second checkout never waited on the first's bill"
        return real_complete(*args, **kwargs)

    monkeypatch.setattr(sales_services, "_complete", complete)
    responses: dict[str, object] = {}

    def post(name, api, body):  # type: ignore[no-untyped-def]
        def run() -> None:
            try:
                if name == "second":
                    assert inserted.wait(10)
                responses[name] = api.post(ONE_SHOT, body, format="json", HTTP_IDEMPOTENCY_KEY=key)
            except Exception as error:
                responses[name] = error
            finally:
                connection.close()

        return threading.Thread(target=run, name=name)

    threads = [post("first", first_api, first_body), post("second", second_api, second_body)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return responses["first"], responses["second"]


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_api_checkouts_with_one_key_charge_once_and_the_second_answers_as_the_first(
    monkeypatch, client_for, receptionist, store1, shopper, care, top_up
):
    """PostgreSQL: the second INSERT waits on the first's uncommitted bill, then writes nothing; the second
    request reads the committed bill (READ COMMITTED), its idempotency record clashes, and it replays."""
    if connection.vendor != "postgresql":
        pytest.skip("two transactions at once: PostgreSQL only")
    # given: a member with 1,000.00 of stored value; one till sends the same checkout twice (a retry)
    top_up(shopper, "1000.00")
    apis = [client_for(receptionist, HTTP_X_STORE_ID=str(store1.pk)) for _ in range(2)]
    body = _body(shopper, care, amount="600.00")

    # when: both at once, the retry arriving while the first has not committed
    first, second = _race(monkeypatch, apis[0], apis[1], body, body, "till-race-1")

    # then: one bill, charged once; the retry answers exactly as the first did
    assert first.status_code == 201, first.json()
    assert second.status_code == 201, second.json()
    assert second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert Bill.objects.count() == 1
    assert balances(shopper)["principal"] == 40_000


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_api_checkout_with_the_key_and_another_request_is_refused_and_charges_nothing(
    monkeypatch, client_for, receptionist, store1, shopper, care, serum, top_up
):
    if connection.vendor != "postgresql":
        pytest.skip("two transactions at once: PostgreSQL only")
    top_up(shopper, "1000.00")
    apis = [client_for(receptionist, HTTP_X_STORE_ID=str(store1.pk)) for _ in range(2)]

    first, second = _race(
        monkeypatch,
        apis[0],
        apis[1],
        _body(shopper, care, amount="600.00"),
        _body(shopper, serum, amount="250.00"),
        "till-race-2",
    )

    assert first.status_code == 201, first.json()
    assert (second.status_code, second.json()["code"]) == (409, "idempotency.key_reused")
    assert Bill.objects.count() == 1
    assert balances(shopper)["principal"] == 40_000


def _record(org, key: str, status_code: int = 201) -> IdempotencyRecord:
    return IdempotencyRecord(
        organisation_id=org.pk, key=key, scope="t", request_hash="h", status_code=status_code, response={}
    )


def test_insert_rows_or_skip_across_statements_leaves_out_each_clash_and_keys_the_others(org):
    # given: three keys taken, in what will be the first, second and third statement on SQLite (999 parameters:
    # 124 rows of 8 columns each)
    taken = ["k-5", "k-130", "k-290"]
    insert_rows([_record(org, key, 200) for key in taken])

    # when: 300 rows, k-0 … k-299
    rows = [_record(org, f"k-{n}") for n in range(300)]
    written = insert_rows_or_skip(rows, match="key")

    # then: 297 written, each object with its own row's key; the three clashes left out
    assert len(written) == 297
    assert [row.key for row in rows if row.pk is None] == taken
    stored = dict(IdempotencyRecord.objects.filter(organisation_id=org.pk).values_list("key", "pk"))
    assert all(stored[row.key] == row.pk for row in written)
    assert IdempotencyRecord.objects.filter(key__in=taken, status_code=200).count() == 3


def test_a_checkout_retried_after_its_idempotency_record_was_purged_answers_its_bill_again(
    client_for, receptionist, store1, shopper, care, hq_actor
):
    """``bill_checkout(key_unused=True)`` (the API) skips the replay check before the work; its docstring (and
    ef149d6's) says a bill that holds the key anyway — "the record was purged after its 30 days" — is still
    found at the bill's INSERT and replayed. Not when the work before the INSERT refuses first: the coupon the
    first checkout used is now used."""
    # given: a checkout of 基础护理 600.00 with a 50.00 coupon, paid 550.00 cash under "till-7"
    template = coupon_template_save(
        actor=hq_actor,
        data=CouponTemplateInput(name="50元代金券", kind="amount_off", amount_off_fen=5_000, valid_days=30),
    )
    coupon = coupon_issue(actor=hq_actor, member=shopper, template=template, source="manual", idempotency_key="c-7")
    api = client_for(receptionist, HTTP_X_STORE_ID=str(store1.pk))
    body = {
        "member_id": shopper.pk,
        "lines": [{"item_id": care.pk}],
        "tenders": [{"kind": "cash", "amount": "550.00"}],
        "coupon_ids": [coupon.pk],
    }
    first = api.post(ONE_SHOT, body, format="json", HTTP_IDEMPOTENCY_KEY="till-7")
    assert first.status_code == 201, first.json()
    # …and 31 days later the idempotency records are purged
    assert idempotency_purge(today=timezone.localdate() + timedelta(days=31)).deleted >= 1
    assert not IdempotencyRecord.objects.filter(key="till-7").exists()

    # when: the till retries the same request with the same key
    again = api.post(ONE_SHOT, body, format="json", HTTP_IDEMPOTENCY_KEY="till-7")

    # then: the first bill again, nothing charged twice
    assert again.status_code == 201, again.json()
    assert again.json()["number"] == first.json()["number"]
    assert Bill.objects.count() == 1
