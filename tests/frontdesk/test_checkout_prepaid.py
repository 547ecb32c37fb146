"""The checkout screen with cards and prepaid: the payment password (S-17), count-card sessions and gift cards."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from meiye.cards import services as card_services
from meiye.cards.models import PaymentPassword
from meiye.cards.services import payment_code_send, payment_password_set
from meiye.core.money import Money
from meiye.giftcards.selectors import gift_card_balance
from meiye.giftcards.services import gift_card_sell
from meiye.notify.models import Message
from meiye.packages.models import MemberPackageItem
from meiye.packages.services import ProductItemInput, package_product_save
from meiye.sales.models import Bill, BillStatus
from meiye.sales.services import LineInput, TenderInput, bill_checkout
from tests.frontdesk.sales_fixtures import *  # noqa: F403
from tests.frontdesk.sales_fixtures import balances, field_errors
from tests.frontdesk.test_checkout import _add, _key, _open


@pytest.fixture
def cashier(receptionist, store1, actor_for):
    return actor_for(receptionist, store1)


@pytest.fixture
def vip_with_password(vip, cashier, monkeypatch):
    """林小姐 set her payment password 860412 after a code sent to her phone."""
    monkeypatch.setattr(card_services, "_new_code", lambda: "246810")
    payment_code_send(actor=cashier, member=vip, purpose="password")
    payment_password_set(actor=cashier, member=vip, password="860412", code="246810")
    return vip


def _pay_stored_value(client, bill, key, **extra):
    return client.post(
        f"/checkout/{bill.pk}/complete/", {"idempotency_key": key, "stored_value_amount": "600.00", **extra}
    )


def test_S17_the_screen_asks_for_the_password_refuses_a_wrong_one_and_sends_the_sms(
    receptionist, vip_with_password, catalogue, client_for, django_capture_on_commit_callbacks
):
    client = client_for(receptionist)
    bill = _open(client, vip_with_password)
    _add(client, bill, catalogue["facial"])
    screen = client.get(f"/checkout/{bill.pk}/").content.decode()
    assert 'data-testid="sv-auth"' in screen and 'type="password"' in screen
    key = _key(client, bill)

    # no password: refused beside the password, nothing charged
    response = _pay_stored_value(client, bill, key)
    assert response.status_code == 400
    assert field_errors(response.content.decode(), "payment_password") or "支付密码" in response.content.decode()
    # a wrong password: refused, with the tries left
    response = _pay_stored_value(client, bill, key, payment_password="111111")
    assert response.status_code == 400
    assert "4" in response.content.decode()
    assert PaymentPassword.objects.get(member=vip_with_password).failures == 1  # counted, though refused
    assert balances(vip_with_password)["principal"] == 100_000
    assert Bill.objects.get(pk=bill.pk).status == BillStatus.OPEN

    # the right password pays, and the member gets the SMS
    with django_capture_on_commit_callbacks(execute=True):
        response = _pay_stored_value(client, bill, key, payment_password="860412")
    assert response.status_code == 302
    assert Bill.objects.get(pk=bill.pk).status == BillStatus.COMPLETED
    sms = Message.objects.get(member=vip_with_password, event="wallet.charge")
    assert "¥600.00" in sms.body and "¥600.00" in sms.body


def test_a_member_without_a_password_pays_as_before(receptionist, vip, catalogue, client_for):
    client = client_for(receptionist)
    bill = _open(client, vip)
    _add(client, bill, catalogue["facial"])
    assert 'data-testid="sv-auth"' not in client.get(f"/checkout/{bill.pk}/").content.decode()
    response = _pay_stored_value(client, bill, _key(client, bill))
    assert response.status_code == 302


def test_sessions_pay_for_the_facial_from_the_screen(
    receptionist, hq_admin, vip, catalogue, client_for, actor_for, store1
):
    hq = actor_for(hq_admin, store1)
    cashier = actor_for(receptionist, store1)
    product = package_product_save(
        actor=hq,
        code="care-5",
        name="基础护理5次卡",
        price=Money.parse("2500.00"),
        kind="count",
        items=[ProductItemInput(service_id=catalogue["facial"].pk, count=5, validity_value=6)],
    )
    bill_checkout(
        actor=cashier,
        member=vip,
        lines=[LineInput(item_id=product.item_id)],
        tenders=[TenderInput(kind="cash", amount=Money.parse("2500.00"))],
        idempotency_key="buy-care-5",
    )
    item = MemberPackageItem.objects.get(member_package__member=vip)
    client = client_for(receptionist)
    bill = _open(client, vip)
    _add(client, bill, catalogue["facial"])
    screen = client.get(f"/checkout/{bill.pk}/").content.decode()
    assert "基础护理5次卡" in screen and "剩 5 次" in screen

    response = client.post(
        f"/checkout/{bill.pk}/complete/",
        {"idempotency_key": _key(client, bill), "package_item": str(item.pk), "package_sessions": "1"},
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    item.refresh_from_db()
    assert item.remaining == 4
    receipt = client.get(response["Location"]).content.decode()
    assert "基础护理5次卡 · 基础护理" in receipt and "1 次" in receipt


def test_a_gift_card_pays_from_the_screen_and_a_wrong_code_is_shown_beside_it(
    receptionist, vip, catalogue, client_for, actor_for, store1
):
    (card,) = gift_card_sell(
        actor=actor_for(receptionist, store1),
        face=Money.parse("600.00"),
        price=Money.parse("600.00"),
        tender="cash",
        expires_on=timezone.localdate() + timedelta(days=30),
        idempotency_key="sell",
    )
    client = client_for(receptionist)
    bill = _open(client, vip)
    _add(client, bill, catalogue["facial"])
    key = _key(client, bill)

    response = client.post(
        f"/checkout/{bill.pk}/complete/",
        {"idempotency_key": key, "gift_card_amount": "600.00", "gift_card_code": "ABCD-EFGH-JKMN-PQRS"},
    )
    assert response.status_code == 400
    assert field_errors(response.content.decode(), "gift_card_amount")

    response = client.post(
        f"/checkout/{bill.pk}/complete/",
        {"idempotency_key": key, "gift_card_amount": "600.00", "gift_card_code": card.code},
    )
    assert response.status_code == 302
    assert gift_card_balance(card) == Money(0)


def test_S06_the_points_row_says_how_many_points_may_pay_this_bill(receptionist, vip, catalogue, client_for):
    # 林小姐 holds 12,000 points; the store's rate is 100 points per 元 and its cap 10% of the payable
    client = client_for(receptionist)
    bill = _open(client, vip)
    _add(client, bill, catalogue["facial"])

    screen = client.get(f"/checkout/{bill.pk}/").content.decode()

    # 10% of 600.00 = 60.00, in whole 元: 6,000 points
    assert "本单最多用 6000 积分抵 ¥60.00" in screen
