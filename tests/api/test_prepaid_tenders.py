"""The checkout API with cards and prepaid tenders: a gift card and count-card sessions (ADR 0006)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from meiye.cards import services as card_services
from meiye.cards.models import PaymentPassword
from meiye.cards.services import payment_code_send, payment_password_set, stored_value_authorize
from meiye.core.errors import ApplicationError
from meiye.core.idempotency import idempotency_purge
from meiye.core.money import Money
from meiye.giftcards.selectors import gift_card_balance
from meiye.giftcards.services import gift_card_sell
from meiye.packages.models import MemberPackageItem
from meiye.packages.services import ProductItemInput, package_product_save
from meiye.sales.services import LineInput, TenderInput, bill_checkout

ONE_SHOT = "/api/v1/bills/checkout/"


def _checkout(client, body, key):
    return client.post(ONE_SHOT, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_a_gift_card_pays_through_the_api_and_its_code_is_never_echoed(reception_api, cashier_actor, shopper, care):
    (card,) = gift_card_sell(
        actor=cashier_actor,
        face=Money.parse("600.00"),
        price=Money.parse("600.00"),
        tender="cash",
        expires_on=timezone.localdate() + timedelta(days=30),
        idempotency_key="sell",
    )

    response = _checkout(
        reception_api,
        {
            "member_id": shopper.pk,
            "lines": [{"item_id": care.pk}],
            "tenders": [{"kind": "gift_card", "amount": "600.00", "gift_card_code": card.code}],
        },
        "gift",
    )

    assert response.status_code == 201, response.json()
    (tender,) = response.json()["tenders"]
    assert (tender["kind"], tender["amount"], tender["gift_card_id"]) == ("gift_card", "600.00", card.pk)
    assert card.code not in response.content.decode()
    assert gift_card_balance(card) == Money(0)


def test_sessions_pay_through_the_api(reception_api, cashier_actor, hq_actor, shopper, care):
    product = package_product_save(
        actor=hq_actor,
        code="care-5",
        name="基础护理5次卡",
        price=Money.parse("2500.00"),
        kind="count",
        items=[ProductItemInput(service_id=care.pk, count=5, validity_value=6)],
    )
    bill_checkout(
        actor=cashier_actor,
        member=shopper,
        lines=[LineInput(item_id=product.item_id)],
        tenders=[TenderInput(kind="cash", amount=Money.parse("2500.00"))],
        idempotency_key="buy",
    )
    item = MemberPackageItem.objects.get(member_package__member=shopper)

    response = _checkout(
        reception_api,
        {
            "member_id": shopper.pk,
            "lines": [{"item_id": care.pk}],
            "tenders": [{"kind": "package", "package_item_id": item.pk, "sessions": 1}],
        },
        "use",
    )

    assert response.status_code == 201, response.json()
    (tender,) = response.json()["tenders"]
    assert (tender["kind"], tender["amount"], tender["sessions"]) == ("package", "600.00", 1)
    item.refresh_from_db()
    assert item.remaining == 4


def test_a_package_tender_with_an_amount_is_refused_naming_the_field(reception_api, shopper, care):
    response = _checkout(
        reception_api,
        {
            "member_id": shopper.pk,
            "lines": [{"item_id": care.pk}],
            "tenders": [{"kind": "package", "package_item_id": 999, "sessions": 1, "amount": "600.00"}],
        },
        "bad",
    )
    assert response.status_code == 400
    problem = response.json()
    assert problem["code"] == "sales.invalid_tender"
    assert "tenders[0]" in problem["detail"]


def _care_by_stored_value(shopper, care, *, password: str) -> dict:
    """A one-shot checkout body: the 600.00 care service paid from stored value with ``password``."""
    return {
        "member_id": shopper.pk,
        "lines": [{"item_id": care.pk}],
        "tenders": [{"kind": "stored_value", "amount": "600.00", "payment_password": password}],
    }


@pytest.fixture
def shopper_with_password(cashier_actor, shopper, monkeypatch):
    """The shopper set her payment password 860412 after a code sent to her phone."""
    monkeypatch.setattr(card_services, "_new_code", lambda: "246810")
    payment_code_send(actor=cashier_actor, member=shopper, purpose="password")
    payment_password_set(actor=cashier_actor, member=shopper, password="860412", code="246810")
    return shopper


def test_wrong_payment_passwords_through_the_api_count_and_lock_stored_value(
    reception_api, shopper_with_password, care, top_up
):
    """S-17 through the API: each wrong password is counted although the checkout answers 400 (the view's
    transaction rolls back), and the fifth locks stored value for 30 minutes."""
    shopper = shopper_with_password
    top_up(shopper, "1000.00")
    body = _care_by_stored_value(shopper, care, password="111111")

    first = _checkout(reception_api, body, "wrong-1")
    assert first.status_code == 400
    assert first.json()["code"] == "wallet.payment_password_wrong"
    assert PaymentPassword.objects.get(member=shopper).failures == 1
    for attempt in range(2, 6):
        _checkout(reception_api, body, f"wrong-{attempt}")
    right = {**body, "tenders": [{**body["tenders"][0], "payment_password": "860412"}]}
    locked = _checkout(reception_api, right, "right")

    assert locked.status_code in (400, 403, 409)
    assert locked.json()["code"] == "wallet.payment_locked"


def test_a_failure_count_that_stood_is_not_counted_again(cashier_actor, shopper_with_password):
    with pytest.raises(ApplicationError) as refused:
        stored_value_authorize(actor=cashier_actor, member=shopper_with_password, password="111111")
    assert refused.value.after_rollback is not None
    refused.value.after_rollback()  # no transaction rolled the first count back

    assert PaymentPassword.objects.get(member=shopper_with_password).failures == 1


def test_a_password_checkout_retried_after_the_purge_is_answered_before_the_password_is_checked(
    reception_api, shopper_with_password, care, top_up
):
    """The API skips the service's replay check only when no tender carries a password or code: a retry
    after the HTTP record's purge is answered from the bill, not refused by the gate (here: locked since)."""
    shopper = shopper_with_password
    top_up(shopper, "1000.00")
    body = _care_by_stored_value(shopper, care, password="860412")
    first = _checkout(reception_api, body, "pw-retry")
    assert first.status_code == 201, first.json()
    assert idempotency_purge(today=timezone.localdate() + timedelta(days=31)).deleted == 1
    PaymentPassword.objects.filter(member=shopper).update(locked_until=timezone.now() + timedelta(minutes=30))

    again = _checkout(reception_api, body, "pw-retry")

    assert again.status_code == 201, again.json()
    assert again.json()["id"] == first.json()["id"]
    assert PaymentPassword.objects.get(member=shopper).failures == 0
