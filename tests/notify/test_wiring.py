"""The services that tell members: a recharge ("wallet.recharge"), a coupon issued by hand or by a rule
("coupon.issued"), the birthday gift ("member.birthday"). Each message is stored once, in the caller's
transaction (a rolled-back recharge stores nothing), with the event's variables, and a message never fails
the operation that reported it."""

from __future__ import annotations

from datetime import date, timedelta
from unittest import mock

import pytest
from django.core.cache import cache
from django.db import transaction

from meiye.core.errors import ValidationFailed
from meiye.core.money import Money
from meiye.loyalty.rules import birthday_gifts_give, dormant_wake, rules_settings_save
from meiye.notify.models import Message
from meiye.org.context import Actor
from meiye.promotions.models import Coupon, CouponKind
from meiye.promotions.services import CouponTemplateInput, coupon_issue, coupon_template_save
from meiye.wallet.models import Recharge
from meiye.wallet.selectors import wallet_balance
from meiye.wallet.services import wallet_recharge


@pytest.fixture(autouse=True)
def _fresh_rules_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def hq(hq_admin, actor_for, store1) -> Actor:
    return actor_for(hq_admin, store1)


@pytest.fixture
def store_manager(manager, actor_for, store1) -> Actor:
    return actor_for(manager, store1)


@pytest.fixture
def member(make_member, store1):
    return make_member(store1, name="周女士", phone="13900001111", birthday=date(1990, 11, 24))


def _template(hq: Actor, name: str = "满300减50", days: int = 30):
    return coupon_template_save(
        actor=hq,
        data=CouponTemplateInput(name=name, kind=CouponKind.AMOUNT_OFF, amount_off_fen=5_000, valid_days=days),
    )


def _messages() -> list[tuple[str, int, str]]:
    return list(Message.objects.order_by("pk").values_list("event", "member_id", "idempotency_key"))


# --- wallet.recharge -----------------------------------------------------------------------------------------------


def test_a_recharge_tells_the_member_once_with_amount_bonus_and_balance(store_manager, member):
    recharge = wallet_recharge(
        actor=store_manager,
        member=member,
        amount=Money.parse("1000.00"),
        bonus=Money.parse("200.00"),
        tender="wechat",
        idempotency_key="recharge-1",
    )

    message = Message.objects.get()
    assert (message.event, message.member_id, message.channel, message.status) == (
        "wallet.recharge",
        member.pk,
        "sms",
        "queued",
    )
    assert message.idempotency_key == f"wallet.recharge:{recharge.pk}"
    assert message.body == "周女士您好，您已充值 ¥1,000.00，当前储值余额 ¥1,200.00。感谢您的信任！"

    # the replay of the recharge returns the first one and tells nothing more
    again = wallet_recharge(
        actor=store_manager,
        member=member,
        amount=Money.parse("1000.00"),
        bonus=Money.parse("200.00"),
        tender="wechat",
        idempotency_key="recharge-1",
    )
    assert again.pk == recharge.pk
    assert Message.objects.count() == 1

    # a second recharge is a second message with the balance after it
    second = wallet_recharge(
        actor=store_manager, member=member, amount=Money.parse("300.00"), tender="cash", idempotency_key="recharge-2"
    )
    assert _messages() == [
        ("wallet.recharge", member.pk, f"wallet.recharge:{recharge.pk}"),
        ("wallet.recharge", member.pk, f"wallet.recharge:{second.pk}"),
    ]
    assert (
        Message.objects.order_by("pk").last().body
        == "周女士您好，您已充值 ¥300.00，当前储值余额 ¥1,500.00。感谢您的信任！"
    )


def test_a_rolled_back_recharge_stores_no_message(store_manager, member):
    with pytest.raises(RuntimeError), transaction.atomic():
        wallet_recharge(
            actor=store_manager, member=member, amount=Money.parse("500.00"), tender="cash", idempotency_key="rb-1"
        )
        assert Message.objects.count() == 1  # stored in the recharge's transaction …
        raise RuntimeError("the caller fails after the recharge")

    assert Message.objects.count() == 0  # … and gone with it
    assert Recharge.objects.count() == 0
    assert wallet_balance(member).total == Money(0)


def test_a_message_that_cannot_be_stored_does_not_undo_the_recharge(store_manager, member):
    refusal = ValidationFailed("notify.test", zh="测试", en="test")
    with mock.patch("meiye.wallet.services.notify_event", side_effect=refusal) as told:
        recharge = wallet_recharge(
            actor=store_manager, member=member, amount=Money.parse("500.00"), tender="cash", idempotency_key="nf-1"
        )

    assert told.call_count == 1
    assert Recharge.objects.get().pk == recharge.pk
    assert wallet_balance(member).total == Money.parse("500.00")
    assert Message.objects.count() == 0


# --- coupon.issued ---------------------------------------------------------------------------------------------------


def test_a_coupon_issued_by_hand_tells_the_member_its_name_and_expiry(hq, member):
    template = _template(hq)

    coupon = coupon_issue(
        actor=hq, member=member, template=template, source="manual", idempotency_key="issue-1", on=date(2026, 11, 24)
    )
    coupon_issue(
        actor=hq, member=member, template=template, source="manual", idempotency_key="issue-1", on=date(2026, 11, 24)
    )

    message = Message.objects.get()
    assert (message.event, message.member_id, message.idempotency_key) == (
        "coupon.issued",
        member.pk,
        f"coupon.issued:{coupon.pk}",
    )
    assert coupon.valid_until == date(2026, 12, 23)
    assert message.body == "周女士您好，您获得一张优惠券「满300减50」，有效期至 2026年12月23日。"
    # a marketing event: without her marketing consent it is stored as skipped, never sent
    assert (message.marketing, message.status) == (True, "skipped")


def test_a_refused_coupon_tells_nothing(hq, member):
    template = coupon_template_save(
        actor=hq,
        data=CouponTemplateInput(
            name="限领一张", kind=CouponKind.AMOUNT_OFF, amount_off_fen=1_000, valid_days=10, per_member_limit=1
        ),
    )
    coupon_issue(actor=hq, member=member, template=template, source="manual", idempotency_key="lim-1")
    with pytest.raises(Exception, match="limit"):
        coupon_issue(actor=hq, member=member, template=template, source="manual", idempotency_key="lim-2")

    assert Coupon.objects.count() == 1
    assert [event for event, _m, _k in _messages()] == ["coupon.issued"]


def test_the_dormant_wake_up_coupon_is_announced_through_coupon_issue(hq, make_member, store1):
    rules_settings_save(
        actor=hq, dormant_days=90, dormant_points=300, dormant_coupon_template_id=_template(hq, "唤醒券100元").pk
    )
    sleeper = make_member(store1, name="李女士")
    on = sleeper.created_at.date() + timedelta(days=120)

    assert dormant_wake(actor=Actor.system(hq.organisation, store1), on=on) == 1
    assert dormant_wake(actor=Actor.system(hq.organisation, store1), on=on) == 0

    coupon = Coupon.objects.get(member=sleeper)
    assert _messages() == [("coupon.issued", sleeper.pk, f"coupon.issued:{coupon.pk}")]
    assert "「唤醒券100元」" in Message.objects.get().body


# --- member.birthday -------------------------------------------------------------------------------------------------


def test_the_birthday_gift_tells_the_member_once_a_year(hq, member, store1):
    rules_settings_save(actor=hq, birthday_gift_points=200)
    system = Actor.system(hq.organisation, store1)

    assert birthday_gifts_give(actor=system, on=date(2026, 11, 24)) == 1
    assert birthday_gifts_give(actor=system, on=date(2026, 11, 24)) == 0

    assert _messages() == [("member.birthday", member.pk, f"member.birthday:{member.pk}:2026")]
    assert Message.objects.get().body.startswith("周女士您好，")
