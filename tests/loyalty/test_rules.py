"""Earning rules and event rewards (issue 4 section 2): birthday, member day, check-in, dormant, referral."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from meiye.catalog.services import item_save
from meiye.core.errors import PermissionDenied, ValidationFailed
from meiye.core.money import Money
from meiye.loyalty.models import (
    BirthdayGift,
    CheckIn,
    DormantReward,
    EarningFlag,
    PointsLot,
    ReferralReward,
    RulesSettings,
)
from meiye.loyalty.rules import (
    birthday_gifts_give,
    birthdays_due,
    checkin_record,
    dormant_wake,
    earning_flags_raise,
    rules_settings_save,
)
from meiye.loyalty.selectors import points_balance
from meiye.org.context import Actor
from meiye.promotions.models import Coupon, CouponKind
from meiye.promotions.services import CouponTemplateInput, coupon_template_save
from meiye.sales.services import LineInput, TenderInput, bill_checkout, bill_refund
from tests.reference import reference_categories, reference_items

ZONE = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def _fresh_rules_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def hq(hq_admin, actor_for, store1) -> Actor:
    return actor_for(hq_admin, store1)


@pytest.fixture
def cashier(receptionist, actor_for, store1) -> Actor:
    return actor_for(receptionist, store1)


@pytest.fixture
def store_manager(manager, actor_for, store1) -> Actor:
    return actor_for(manager, store1)


@pytest.fixture
def system(org, store1) -> Actor:
    return Actor.system(org, store1)


@pytest.fixture
def items(hq) -> dict[str, Any]:
    made = reference_items(hq, categories := reference_categories(hq))
    made["care500"] = item_save(
        actor=hq,
        code="care-500",
        name="基础护理500",
        category=categories["basic_care"],
        price=Money.parse("500.00"),
        duration_minutes=60,
    )
    return made


def _template(hq: Actor, name: str, off: str, days: int) -> Any:
    return coupon_template_save(
        actor=hq,
        data=CouponTemplateInput(
            name=name, kind=CouponKind.AMOUNT_OFF, amount_off_fen=Money.parse(off).fen, valid_days=days
        ),
    )


@pytest.fixture
def rules(hq) -> RulesSettings:
    """The reference rules of shared/SCENARIOS.md."""
    return rules_settings_save(
        actor=hq,
        birthday_multiplier_bp=20_000,
        birthday_gift_points=200,
        member_day=8,
        member_day_multiplier_bp=20_000,
        checkin_points=10,
        checkin_streak_days=7,
        checkin_streak_bonus=50,
        dormant_days=90,
        dormant_points=300,
        dormant_coupon_template_id=_template(hq, "唤醒券100元", "100.00", 30).pk,
        referral_referrer_points=200,
        referral_referee_points=100,
        referral_refund_window_days=7,
        referral_spend_threshold_fen=50_000,
        referral_coupon_template_id=_template(hq, "推荐券50元", "50.00", 30).pk,
        daily_earning_limit=5_000,
    )


def _at(day: date, hour: int = 12) -> Any:
    return mock.patch("django.utils.timezone.now", return_value=datetime.combine(day, time(hour), tzinfo=ZONE))


def _pay(cashier: Actor, member: Any, item: Any, day: date, key: str, amount: str | None = None) -> Any:
    with _at(day):
        return bill_checkout(
            actor=cashier,
            member=member,
            lines=[LineInput(item_id=item.pk)],
            tenders=[
                TenderInput(kind="wechat", amount=Money.parse(amount or Money(item.price_fen).as_decimal_string()))
            ],
            idempotency_key=key,
        )


def _sources(member: Any) -> list[tuple[str, int]]:
    return list(PointsLot.objects.filter(member=member).order_by("pk").values_list("source_code", "amount"))


# --- Settings ---------------------------------------------------------------------------------------------------


def test_rules_settings_are_validated_bilingually_and_need_catalog_manage(hq, cashier, rules):
    with pytest.raises(ValidationFailed) as error:
        rules_settings_save(actor=hq, member_day=32)
    assert (
        error.value.field == "member_day"
        and "会员日" in error.value.message_zh
        and "member_day" in error.value.message_en
    )
    with pytest.raises(ValidationFailed):
        rules_settings_save(actor=hq, birthday_multiplier_bp=5_000)
    with pytest.raises(PermissionDenied):
        rules_settings_save(actor=cashier, member_day=9)
    row = RulesSettings.objects.get()
    assert (row.member_day, row.birthday_multiplier_bp) == (8, 20_000)


# --- S-04 birthday ------------------------------------------------------------------------------------------------


def test_S04_birthday_month_doubles_points_and_the_gift_is_given_once(
    cashier, system, items, rules, make_member, store1
):
    member = make_member(store1, birthday=date(1990, 11, 5))
    november = _pay(cashier, member, items["care500"], date(2026, 11, 20), "s04-nov")
    december = _pay(cashier, member, items["care500"], date(2026, 12, 1), "s04-dec")
    assert (november.points_earned, december.points_earned) == (1_000, 500)
    line = november.lines.all()[0]
    assert [s["step"] for s in line.earning_steps] == ["base_rate", "birthday_month"]
    assert "生日月" in line.earning_steps[-1]["reason"] and "Birthday month" in line.earning_steps[-1]["reason"]

    # the daily job on the birthday: 200 points once; the second run gives nothing more
    assert birthdays_due(organisation_id=member.organisation_id, on=date(2026, 11, 5)) == [member.pk]
    assert birthday_gifts_give(actor=system, on=date(2026, 11, 5)) == 1
    assert birthday_gifts_give(actor=system, on=date(2026, 11, 5)) == 0
    call_command("loyalty_birthdays", "--date", "2026-11-05")
    assert points_balance(member) == 1_000 + 500 + 200
    assert BirthdayGift.objects.filter(member=member, year=2026).count() == 1
    assert ("rule:birthday", 200) in _sources(member)
    assert birthday_gifts_give(actor=system, on=date(2026, 11, 6)) == 0


def test_birthday_scan_is_one_query_and_29_february_falls_on_the_28th(
    system, rules, make_member, store1, django_assert_num_queries
):
    leap = make_member(store1, birthday=date(2000, 2, 29))
    make_member(store1, birthday=date(2000, 3, 1))
    with django_assert_num_queries(1):
        assert birthdays_due(organisation_id=leap.organisation_id, on=date(2027, 2, 28)) == [leap.pk]
    assert birthdays_due(organisation_id=leap.organisation_id, on=date(2028, 2, 28)) == []


def test_without_rules_nothing_is_doubled_or_given(cashier, system, items, make_member, store1):
    member = make_member(store1, birthday=date(1990, 11, 5))
    assert _pay(cashier, member, items["care500"], date(2026, 11, 8), "plain").points_earned == 500
    assert birthday_gifts_give(actor=system, on=date(2026, 11, 5)) == 0
    assert BirthdayGift.objects.count() == 0


# --- S-21 member day ----------------------------------------------------------------------------------------------


def test_S21_member_day_doubles_points_naming_the_rule(cashier, items, rules, make_member, store1):
    member = make_member(store1)
    on_8th = _pay(cashier, member, items["care"], date(2026, 12, 8), "s21-8th")
    on_9th = _pay(cashier, member, items["care"], date(2026, 12, 9), "s21-9th")
    assert (on_8th.points_earned, on_9th.points_earned) == (1_200, 600)
    step = on_8th.lines.all()[0].earning_steps[-1]
    assert step["step"] == "member_day" and step["multiplier"] == "2/1"
    assert "会员日" in step["reason"] and "Member day" in step["reason"]


def test_S21_member_day_in_the_birthday_month_stacks(cashier, items, rules, make_member, store1):
    member = make_member(store1, birthday=date(1991, 12, 20))
    assert _pay(cashier, member, items["care"], date(2026, 12, 8), "both").points_earned == 2_400


# --- S-11 check-in ------------------------------------------------------------------------------------------------


def test_S11_checkin_10_a_day_60_on_the_7th_day_and_a_missed_day_restarts(cashier, rules, make_member, store1):
    member = make_member(store1)
    start = date(2026, 11, 1)
    for offset in range(7):
        checkin_record(actor=cashier, member=member, on=start + timedelta(days=offset))
    assert points_balance(member) == 6 * 10 + 60
    seventh = CheckIn.objects.get(member=member, on=date(2026, 11, 7))
    assert (seventh.streak_day, seventh.points, seventh.bonus) == (7, 10, 50)

    # once a day: a second check-in gives nothing
    again = checkin_record(actor=cashier, member=member, on=date(2026, 11, 7))
    assert again.pk == seventh.pk and points_balance(member) == 120

    # 11-08 missed: 11-09 is day 1 again
    restarted = checkin_record(actor=cashier, member=member, on=date(2026, 11, 9))
    assert (restarted.streak_day, restarted.bonus) == (1, 0)
    assert points_balance(member) == 130
    assert {source for source, _ in _sources(member)} == {"rule:checkin", "rule:checkin_streak"}


# --- S-12 dormant ---------------------------------------------------------------------------------------------------


def test_S12_dormant_member_gets_300_points_and_a_voucher_once_per_spell(
    cashier, system, items, rules, make_member, store1
):
    with _at(date(2026, 1, 1)):
        member = make_member(store1)
        active = make_member(store1)
    _pay(cashier, member, items["care"], date(2026, 3, 1), "visit-1")
    _pay(cashier, active, items["care"], date(2026, 5, 1), "visit-active")

    # 89 days after the visit: not yet dormant
    assert dormant_wake(actor=system, on=date(2026, 5, 29)) == 0
    # 90 days: woken once; the second run gives nothing more
    assert dormant_wake(actor=system, on=date(2026, 5, 30)) == 1
    assert dormant_wake(actor=system, on=date(2026, 5, 30)) == 0
    call_command("loyalty_dormant", "--date", "2026-05-31")
    balance = 600 + 300
    assert points_balance(member) == balance
    reward = DormantReward.objects.get(member=member)
    assert reward.since == date(2026, 3, 1)
    coupon = Coupon.objects.get(member=member)
    assert coupon.template.amount_off_fen == 10_000
    assert (coupon.valid_from, coupon.valid_until) == (date(2026, 5, 30), date(2026, 6, 28))
    assert not DormantReward.objects.filter(member=active).exists()

    # a new visit ends the spell; 90 days after it she is woken again
    _pay(cashier, member, items["care"], date(2026, 7, 1), "visit-2")
    assert dormant_wake(actor=system, on=date(2026, 8, 1)) == 1  # only the other member (since 05-01)
    assert DormantReward.objects.filter(member=member).count() == 1
    assert dormant_wake(actor=system, on=date(2026, 9, 29)) == 1
    assert DormantReward.objects.filter(member=member).count() == 2
    assert ("rule:dormant", 300) in _sources(member)


# --- S-10 referral ---------------------------------------------------------------------------------------------------


def test_S10_first_paid_service_rewards_both_once_and_spend_gives_the_voucher(
    cashier, items, rules, make_member, store1
):
    a = make_member(store1, name="A")
    b = make_member(store1, name="B", referrer_id=a.pk)
    assert points_balance(a) == points_balance(b) == 0  # registration gives nothing

    first = _pay(cashier, b, items["care"], date(2026, 11, 20), "b-1")
    assert points_balance(a) == 200
    assert points_balance(b) == 600 + 100
    reward = ReferralReward.objects.get(referee=b)
    assert (reward.referrer_id, reward.bill_id) == (a.pk, first.pk)
    assert ("rule:referral", 200) in _sources(a) and ("rule:referral", 100) in _sources(b)
    # spend 600.00 >= 500.00: A holds the 50.00 voucher
    assert Coupon.objects.get(member=a).template.amount_off_fen == 5_000

    _pay(cashier, b, items["care"], date(2026, 11, 21), "b-2")
    assert points_balance(a) == 200 and Coupon.objects.filter(member=a).count() == 1


def test_S10_the_points_still_come_when_spend_reached_the_voucher_before_any_service(
    cashier, items, rules, make_member, store1
):
    # given: B spends 250.00 twice on retail (500.00: A's voucher) before her first service
    a = make_member(store1, name="A")
    b = make_member(store1, name="B", referrer_id=a.pk)
    _pay(cashier, b, items["serum"], date(2026, 11, 18), "b-retail-1")
    _pay(cashier, b, items["serum"], date(2026, 11, 19), "b-retail-2")
    assert Coupon.objects.filter(member=a).count() == 1 and points_balance(a) == 0

    # when: her first paid service
    service = _pay(cashier, b, items["care"], date(2026, 11, 20), "b-service")

    # then: A 200 and B 100 points, once, recorded on the same reward row; no second voucher
    assert points_balance(a) == 200
    assert ("rule:referral", 100) in _sources(b)
    reward = ReferralReward.objects.get(referee=b)
    assert (reward.bill_id, reward.coupon is not None) == (service.pk, True)
    assert Coupon.objects.filter(member=a).count() == 1


def test_S10_full_refund_within_7_days_takes_both_rewards_back(
    cashier, store_manager, items, rules, make_member, store1
):
    a = make_member(store1, name="A")
    b = make_member(store1, name="B", referrer_id=a.pk)
    bill = _pay(cashier, b, items["serum"], date(2026, 11, 19), "b-retail")  # retail only: no referral yet
    assert points_balance(a) == 0 and not ReferralReward.objects.exists()
    bill = _pay(cashier, b, items["care"], date(2026, 11, 20), "b-service")
    with _at(date(2026, 11, 27)):
        bill_refund(actor=store_manager, bill=bill, reason="不满意", idempotency_key="refund-b")
    assert points_balance(a) == 0
    assert points_balance(b) == 500  # the retail bill's points stay
    assert ReferralReward.objects.get(referee=b).reversed_on == date(2026, 11, 27)


def test_S10_refund_after_7_days_keeps_the_rewards(cashier, store_manager, items, rules, make_member, store1):
    a = make_member(store1, name="A")
    b = make_member(store1, name="B", referrer_id=a.pk)
    bill = _pay(cashier, b, items["care"], date(2026, 11, 20), "b-service")
    with _at(date(2026, 11, 28)):
        bill_refund(actor=store_manager, bill=bill, reason="不满意", idempotency_key="refund-late")
    assert points_balance(a) == 200
    assert ReferralReward.objects.get(referee=b).reversed_on is None


# --- Daily earning limit ---------------------------------------------------------------------------------------------


def test_earning_above_the_daily_limit_is_flagged_not_refused(cashier, system, items, rules, make_member, store1):
    member = make_member(store1)
    bill = _pay(cashier, member, items["lifting"], date(2026, 11, 20), "big", amount="1000.00")
    _pay(cashier, member, items["lifting"], date(2026, 11, 20), "big-2", amount="1000.00")
    assert bill.points_earned == 3_000 and points_balance(member) == 6_000
    assert earning_flags_raise(actor=system, on=date(2026, 11, 20)) == 1
    assert earning_flags_raise(actor=system, on=date(2026, 11, 20)) == 0
    flag = EarningFlag.objects.get()
    assert (flag.member_id, flag.points, flag.limit) == (member.pk, 6_000, 5_000)


def test_rules_cost_a_checkout_no_query_for_a_member_without_referrer(cashier, items, rules, make_member, store1):
    plain, birthday = make_member(store1), make_member(store1, birthday=date(1990, 12, 3))
    _pay(cashier, plain, items["care"], date(2026, 12, 7), "warm")  # the store's accounts, the rules cached
    _pay(cashier, birthday, items["care"], date(2026, 12, 7), "warm-2")  # her own accounts exist too
    with CaptureQueriesContext(connection) as baseline:
        _pay(cashier, plain, items["care"], date(2026, 12, 9), "plain")
    with CaptureQueriesContext(connection) as with_rules:
        bill = _pay(cashier, birthday, items["care"], date(2026, 12, 8), "rules")
    assert bill.points_earned == 600 * 2 * 2
    assert len(with_rules.captured_queries) <= len(baseline.captured_queries)


# --- The rules' version, read with the checkout's store row ------------------------------------------------------


def _no_cache_read() -> Any:
    return mock.patch("meiye.loyalty.rules.rules_config", side_effect=AssertionError("read through the cache"))


def test_a_checkout_earns_by_this_processs_copy_of_the_rules_without_the_cache(
    cashier, items, rules, make_member, store1
):
    member = make_member(store1)
    assert _pay(cashier, member, items["care"], date(2026, 12, 8), "copy-1").points_earned == 1_200  # copied

    with _no_cache_read():
        again = _pay(cashier, member, items["care"], date(2026, 12, 8), "copy-2")

    assert again.points_earned == 1_200


def test_a_save_of_the_rules_is_earned_by_at_the_next_checkout(hq, cashier, items, rules, make_member, store1):
    member = make_member(store1)
    assert _pay(cashier, member, items["care"], date(2026, 12, 9), "before").points_earned == 600

    rules_settings_save(actor=hq, member_day=9)

    assert _pay(cashier, member, items["care"], date(2026, 12, 9), "after-9th").points_earned == 1_200
    assert _pay(cashier, member, items["care"], date(2026, 12, 8), "after-8th").points_earned == 600


def test_without_rules_a_checkout_reads_none_and_applies_none(cashier, items, make_member, store1):
    member = make_member(store1, birthday=date(1991, 12, 20))

    with _no_cache_read():
        bill = _pay(cashier, member, items["care"], date(2026, 12, 8), "none")

    assert bill.points_earned == 600


def test_a_rules_row_saved_before_versions_is_still_read(cashier, items, rules, make_member, store1):
    RulesSettings.objects.update(version=None)
    cache.clear()
    member = make_member(store1)

    assert _pay(cashier, member, items["care"], date(2026, 12, 8), "legacy").points_earned == 1_200


def test_every_save_of_the_rules_sets_a_new_version(hq, rules):
    first = RulesSettings.objects.get().version
    rules_settings_save(actor=hq, checkin_points=20)
    second = RulesSettings.objects.get().version
    assert first and second and first != second
