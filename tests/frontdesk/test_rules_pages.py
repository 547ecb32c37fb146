"""Earning rules at the front desk: the settings page (HQ; the service's refusals beside the field, in zh and
en, keeping what was typed), the check-in button on the member page (S-11 numbers), and the daily-limit
review flags (store managers and HQ, store-scoped, read only)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.cache import cache

from meiye.audit.models import AuditLog
from meiye.loyalty.models import CheckIn, EarningFlag, RulesSettings
from meiye.loyalty.rules import checkin_record, earning_flags_raise, rules_settings_save
from meiye.loyalty.selectors import local_today, points_balance
from meiye.org.context import Actor
from meiye.promotions.models import CouponKind
from meiye.promotions.services import CouponTemplateInput, coupon_template_save
from tests.frontdesk.sales_fixtures import field_errors

FIELDS = (
    "birthday_multiplier_bp",
    "birthday_gift_points",
    "member_day",
    "member_day_multiplier_bp",
    "checkin_points",
    "checkin_streak_days",
    "checkin_streak_bonus",
    "dormant_days",
    "dormant_points",
    "dormant_coupon_template_id",
    "referral_referrer_points",
    "referral_referee_points",
    "referral_refund_window_days",
    "referral_spend_threshold_fen",
    "referral_coupon_template_id",
    "daily_earning_limit",
)


@pytest.fixture(autouse=True)
def _fresh_rules_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def hq(hq_admin, actor_for, store1) -> Actor:
    return actor_for(hq_admin, store1)


@pytest.fixture
def voucher(hq):
    return coupon_template_save(
        actor=hq,
        data=CouponTemplateInput(name="唤醒券100元", kind=CouponKind.AMOUNT_OFF, amount_off_fen=10_000, valid_days=30),
    )


@pytest.fixture
def member(make_member, store1):
    return make_member(store1, name="周女士", phone="13900001111")


def _form(voucher) -> dict[str, str]:
    """The reference rules of shared/SCENARIOS.md as typed."""
    return {
        "birthday_multiplier": "2",
        "birthday_gift_points": "200",
        "member_day": "8",
        "member_day_multiplier": "2",
        "checkin_points": "10",
        "checkin_streak_days": "7",
        "checkin_streak_bonus": "50",
        "dormant_days": "90",
        "dormant_points": "300",
        "dormant_coupon_template": str(voucher.pk),
        "referral_referrer_points": "200",
        "referral_referee_points": "100",
        "referral_refund_window_days": "7",
        "referral_spend_threshold": "500.00",
        "referral_coupon_template": str(voucher.pk),
        "daily_earning_limit": "5000",
    }


def _saved() -> tuple | None:
    return RulesSettings.objects.values_list(*FIELDS).first()


def _input_value(content: str, name: str) -> str | None:
    match = re.search(rf'<input[^>]*name="{re.escape(name)}"[^>]*>', content)
    if match is None:
        return None
    value = re.search(r'value="([^"]*)"', match.group(0))
    return value.group(1) if value else ""


# --- Settings --------------------------------------------------------------------------------------------------------


def test_hq_saves_the_reference_rules_from_the_form(hq_admin, client_for, voucher):
    client = client_for(hq_admin)
    page = client.get("/settings/rules/")
    assert page.status_code == 200
    html = page.content.decode()
    assert '<a href="/settings/rules/" aria-current="page">积分规则</a>' in html
    assert _input_value(html, "birthday_multiplier") == "1" and _input_value(html, "checkin_streak_days") == "7"
    assert "唤醒券100元" in html

    saved = client.post("/settings/rules/", _form(voucher), follow=True)

    assert saved.redirect_chain == [("/settings/rules/", 302)]
    assert "积分规则已保存。" in saved.content.decode()
    assert _saved() == (
        20_000, 200, 8, 20_000, 10, 7, 50, 90, 300, voucher.pk, 200, 100, 7, 50_000, voucher.pk, 5_000
    )  # fmt: skip
    assert AuditLog.objects.filter(action="loyalty.rules_save").count() == 1
    again = saved.content.decode()
    assert _input_value(again, "member_day_multiplier") == "2"
    assert _input_value(again, "referral_spend_threshold") == "500.00"

    english = client_for(hq_admin, language="en").get("/settings/rules/").content.decode()
    assert ">Earning rules</a>" in english and "Birthday gift points" in english and "Streak bonus" in english


@pytest.mark.parametrize(
    ("changes", "field", "zh", "en"),
    [
        (
            {"member_day": "31"},
            "member_day",
            "会员日（每月几号）：需要 1 到 28 之间的整数。",
            "member_day: must be a whole number from 1 to 28.",
        ),
        (
            {"dormant_days": "0"},
            "dormant_days",
            "沉睡天数：需要 1 到 3650 之间的整数。",
            "dormant_days: must be a whole number from 1 to 3650.",
        ),
        (
            {"checkin_streak_days": "1"},
            "checkin_streak_days",
            "连续签到天数：需要 2 到 365 之间的整数。",
            "checkin_streak_days: must be a whole number from 2 to 365.",
        ),
        (
            {"birthday_multiplier": "0.5"},
            "birthday_multiplier",
            "倍数：需要 1 到 10 之间的数，1 为不加倍。",
            "Multiplier: a number from 1 to 10; 1 means no extra points.",
        ),
    ],
)
def test_a_refused_value_is_shown_beside_its_field_in_both_languages_and_nothing_changes(
    hq, hq_admin, client_for, voucher, changes, field, zh, en
):
    rules_settings_save(actor=hq, checkin_points=10, member_day=8, dormant_days=90)
    before = _saved()
    audits = AuditLog.objects.count()
    typed = {**_form(voucher), **changes}

    chinese = client_for(hq_admin).post("/settings/rules/", typed)
    english = client_for(hq_admin, language="en").post("/settings/rules/", typed)

    assert (chinese.status_code, english.status_code) == (400, 400)
    assert field_errors(chinese.content.decode(), field) == [zh]
    assert field_errors(english.content.decode(), field) == [en]
    html = chinese.content.decode()
    assert _input_value(html, field) == changes[field]  # kept as typed
    assert _input_value(html, "birthday_gift_points") == "200"
    assert _saved() == before and AuditLog.objects.count() == audits


def test_only_hq_may_open_the_rules(receptionist, manager, client_for):
    assert client_for(receptionist).get("/settings/rules/").status_code == 403
    assert client_for(manager).post("/settings/rules/", {"checkin_points": "10"}).status_code == 403
    assert RulesSettings.objects.count() == 0


def test_S08_hq_sets_the_expiry_reminder_and_a_yearly_clearing_date(hq_admin, client_for):
    from meiye.loyalty.models import LoyaltySettings

    client = client_for(hq_admin)
    assert "积分有效期与到期" in client.get("/settings/rules/").content.decode()
    answer = client.post(
        "/settings/rules/expiry/",
        {"points_lifetime_months": "12", "expiry_reminder_days": "31", "clearing_month": "12", "clearing_day": "31"},
    )
    assert answer.status_code == 302
    row = LoyaltySettings.objects.get()
    assert (row.points_lifetime_months, row.expiry_reminder_days, row.clearing_month, row.clearing_day) == (
        12,
        31,
        12,
        31,
    )


def test_a_clearing_date_that_is_not_a_date_is_refused_beside_the_day(hq_admin, client_for):
    from meiye.loyalty.models import LoyaltySettings

    typed = {"points_lifetime_months": "12", "expiry_reminder_days": "31", "clearing_month": "2", "clearing_day": "30"}
    answer = client_for(hq_admin).post("/settings/rules/expiry/", typed)
    assert answer.status_code == 400
    assert field_errors(answer.content.decode(), "clearing_day") == ["年度清零日期：2 月 30 日不是有效日期。"]
    assert not LoyaltySettings.objects.exists()
    assert (
        client_for(hq_admin)
        .post("/settings/rules/expiry/", {**typed, "clearing_month": "", "clearing_day": ""})
        .status_code
        == 302
    )


# --- Check-in --------------------------------------------------------------------------------------------------------


def test_S11_checkin_button_gives_10_points_and_a_second_click_says_already(
    hq, receptionist, client_for, member, store1
):
    rules_settings_save(actor=hq, checkin_points=10, checkin_streak_days=7, checkin_streak_bonus=50)
    client = client_for(receptionist)
    page = client.get(f"/members/{member.pk}/").content.decode()
    assert 'data-testid="checkin"' in page

    first = client.post(f"/members/{member.pk}/checkin/", follow=True)
    second = client.post(f"/members/{member.pk}/checkin/", follow=True)

    assert first.redirect_chain == [(f"/members/{member.pk}/", 302)]
    assert "签到成功：连续第 1 天，获得 10 积分。" in first.content.decode()
    assert "今天已经签到过了（连续第 1 天），不再赠送积分。" in second.content.decode()
    assert points_balance(member) == 10
    assert list(CheckIn.objects.values_list("on", "streak_day", "points", "bonus")) == [(local_today(store1), 1, 10, 0)]
    english = client_for(receptionist, language="en").post(f"/members/{member.pk}/checkin/", follow=True)
    assert "Already checked in today (day 1 of the streak); no more points." in english.content.decode()


def test_the_7th_day_shows_the_streak_bonus(hq, receptionist, client_for, member, store1):
    rules_settings_save(actor=hq, checkin_points=10, checkin_streak_days=7, checkin_streak_bonus=50)
    today = local_today(store1)
    for back in range(6, 0, -1):
        checkin_record(actor=hq, member=member, on=today - timedelta(days=back))

    response = client_for(receptionist).post(f"/members/{member.pk}/checkin/", follow=True)

    assert "签到成功：连续第 7 天，获得 60 积分（含连续签到奖励 50）。" in response.content.decode()
    assert points_balance(member) == 6 * 10 + 60


def test_a_beautician_has_no_checkin_button_and_may_not_post_it(hq, beautician, client_for, member):
    rules_settings_save(actor=hq, checkin_points=10)
    client = client_for(beautician)

    assert 'data-testid="checkin"' not in client.get(f"/members/{member.pk}/").content.decode()
    assert client.post(f"/members/{member.pk}/checkin/").status_code == 403
    assert CheckIn.objects.count() == 0 and points_balance(member) == 0


def test_a_member_of_another_store_cannot_be_checked_in(hq, receptionist, client_for, make_member, store2):
    rules_settings_save(actor=hq, checkin_points=10)
    other = make_member(store2)

    assert client_for(receptionist).post(f"/members/{other.pk}/checkin/").status_code == 404
    assert CheckIn.objects.count() == 0


# --- Review flags ----------------------------------------------------------------------------------------------------


def test_managers_see_the_flags_of_their_stores_only(
    hq, hq_admin, manager, receptionist, client_for, member, make_member, store1, store2, actor_for
):
    rules_settings_save(actor=hq, checkin_points=10, daily_earning_limit=5)
    elsewhere = make_member(store2, name="李女士")
    today = local_today(store1)
    checkin_record(actor=hq, member=member, on=today)
    checkin_record(actor=actor_for(hq_admin, store2), member=elsewhere, on=today)
    assert earning_flags_raise(actor=Actor.system(hq.organisation, store1), on=today) == 2

    mine = client_for(manager).get("/settings/rules/flags/")
    everyone = client_for(hq_admin).get("/settings/rules/flags/")

    assert mine.status_code == 200
    html = mine.content.decode()
    assert "周女士" in html and "李女士" not in html
    flag = EarningFlag.objects.get(member=member)
    assert re.findall(r'<tr data-flag="(\d+)"', html) == [str(flag.pk)]
    assert re.findall(r'data-testid="points">(\d+)<', html) == ["10"]
    assert '<a href="/settings/rules/flags/" aria-current="page">积分复核</a>' in html
    assert len(re.findall(r'<tr data-flag="', everyone.content.decode())) == 2
    assert client_for(receptionist).get("/settings/rules/flags/").status_code == 403


def test_a_manager_marks_a_flag_reviewed_on_the_page(hq, manager, client_for, member, store1):
    rules_settings_save(actor=hq, checkin_points=10, daily_earning_limit=5)
    today = local_today(store1)
    checkin_record(actor=hq, member=member, on=today)
    earning_flags_raise(actor=Actor.system(hq.organisation, store1), on=today)
    flag = EarningFlag.objects.get(member=member)
    client = client_for(manager)

    refused = client.post(f"/settings/rules/flags/{flag.pk}/review/", {"note": ""})
    assert refused.status_code == 400
    assert f'id="error-note-{flag.pk}"' in refused.content.decode()

    done = client.post(f"/settings/rules/flags/{flag.pk}/review/", {"note": "团购核实无误"})
    assert done.status_code == 302
    page = client.get("/settings/rules/flags/").content.decode()
    assert "已复核" in page and "团购核实无误" in page
