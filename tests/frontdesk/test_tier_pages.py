"""Member tiers at the front desk: the ladder on the settings pages (HQ: list, create, edit, delete, and the
service's refusals beside the field), a member's tier (badge, progress, history, grant by hand) and the tier
name on the checkout screen."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from meiye.audit.models import AuditLog
from meiye.catalog.services import item_save
from meiye.core.money import Money
from meiye.loyalty.models import MemberTier, Tier, TierChange
from meiye.loyalty.selectors import local_today
from meiye.sales.services import LineInput, TenderInput, bill_checkout, bill_open
from tests.frontdesk.sales_fixtures import *  # noqa: F403
from tests.frontdesk.sales_fixtures import field_errors
from tests.loyalty.tiers_reference import grant, reference_tiers
from tests.reference import reference_categories

HTMX = {"HX-Request": "true"}


@pytest.fixture
def hq(hq_admin, store1, actor_for):
    return actor_for(hq_admin, store1)


@pytest.fixture
def tiers(hq):
    return reference_tiers(hq)


@pytest.fixture
def member(make_member, store1):
    return make_member(store1, name="周女士", phone="13900001111")


def _input_value(content: str, name: str) -> str | None:
    match = re.search(rf'<(?:input|textarea)[^>]*name="{re.escape(name)}"[^>]*>(?:([^<]*)</textarea>)?', content)
    if match is None:
        return None
    if match.group(0).startswith("<textarea"):
        return match.group(1).strip()
    value = re.search(r'value="([^"]*)"', match.group(0))
    return value.group(1) if value else ""


def _ladder() -> list[tuple]:
    return list(
        Tier.objects.order_by("threshold_fen").values_list(
            "code",
            "name_zh",
            "name_en",
            "threshold_fen",
            "discounts_bp",
            "points_multiplier_bp",
            "points_per_yuan_offset",
            "points_lifetime_months",
            "perks_zh",
            "perks_en",
        )
    )


def _tier_state() -> dict:
    return {
        "ladder": _ladder(),
        "states": list(MemberTier.objects.values_list("member_id", "tier_id", "floor_tier_id", "floor_until")),
        "changes": TierChange.objects.count(),
        "audit": AuditLog.objects.filter(action__startswith="loyalty.tier").count(),
    }


SILVER_FORM = {
    "code": "silver",
    "name_zh": "银卡",
    "name_en": "Silver",
    "threshold": "3,000.00",
    "discount_service": "10",
    "points_multiplier": "1.2",
    "points_per_yuan_offset": "100",
    "points_lifetime_months": "12",
    "perks_zh": "生日礼",
    "perks_en": "Birthday gift",
}


# --- Settings: the ladder -----------------------------------------------------------------------------------------


def test_hq_sees_the_ladder_on_the_settings_page(hq_admin, client_for, tiers):
    client = client_for(hq_admin)

    page = client.get("/settings/tiers/")

    assert page.status_code == 200
    html = page.content.decode()
    assert '<a href="/settings/tiers/" aria-current="page">会员等级</a>' in html
    rows = re.findall(r'<tr data-tier="([a-z]+)"', html)
    assert rows == ["regular", "silver", "gold", "diamond"]
    assert re.findall(r'data-testid="threshold">([^<]+)<', html) == ["¥0.00", "¥3,000.00", "¥10,000.00", "¥30,000.00"]
    assert "服务 −10%" in html and "服务 −15%" in html and "×1.2" in html and "×1.5" in html
    assert "银卡权益" in html
    english = client_for(hq_admin, language="en").get("/settings/tiers/").content.decode()
    assert ">Member tiers</a>" in english and "Silver" in english and "Service −20%" in english
    assert "Silver perks" in english


def test_hq_builds_a_ladder_from_the_form(hq_admin, client_for):
    client = client_for(hq_admin)
    first = client.get("/settings/tiers/new/").content.decode()
    assert _input_value(first, "threshold") == "0.00"  # the first tier starts at 0
    assert _input_value(first, "points_multiplier") == "1"

    regular = client.post("/settings/tiers/new/", {"code": "regular", "name_zh": "普通会员", "threshold": "0"})
    silver = client.post("/settings/tiers/new/", SILVER_FORM, follow=True)

    assert regular.status_code == 302 and regular["Location"] == "/settings/tiers/"
    assert "会员等级 银卡 已保存。" in silver.content.decode()
    assert _ladder() == [
        ("regular", "普通会员", "", 0, {}, 10_000, None, None, "", ""),
        ("silver", "银卡", "Silver", 300_000, {"service": 1_000}, 12_000, 100, 12, "生日礼", "Birthday gift"),
    ]
    assert AuditLog.objects.filter(action="loyalty.tier_save").count() == 2


def test_editing_shows_the_tier_as_typed_and_keeps_the_code(hq_admin, client_for, tiers):
    client = client_for(hq_admin)
    gold = tiers["gold"]

    form = client.get(f"/settings/tiers/{gold.pk}/").content.decode()

    assert (_input_value(form, "threshold"), _input_value(form, "discount_service")) == ("10000.00", "15")
    assert (_input_value(form, "points_multiplier"), _input_value(form, "points_per_yuan_offset")) == ("1.2", "90")
    assert _input_value(form, "discount_retail") == ""
    assert re.search(r'<input[^>]*name="code"[^>]*disabled', form)

    changed = {
        **SILVER_FORM,
        "code": "hacked",
        "name_zh": "金卡",
        "name_en": "Gold",
        "threshold": "12000",
        "discount_service": "12.5",
        "discount_retail": "0",
        "points_multiplier": "1.25",
        "points_per_yuan_offset": "",
        "points_lifetime_months": "",
    }
    response = client.post(f"/settings/tiers/{gold.pk}/", changed)

    assert response.status_code == 302
    gold.refresh_from_db()
    assert (gold.code, gold.threshold_fen, gold.discounts_bp, gold.points_multiplier_bp) == (
        "gold",
        1_200_000,
        {"retail": 0, "service": 1_250},
        12_500,
    )
    assert (gold.points_per_yuan_offset, gold.points_lifetime_months) == (None, None)


@pytest.mark.parametrize(
    ("changes", "field", "zh", "en"),
    [
        (
            {"threshold": "10000"},
            "threshold",
            "门槛成长值：与「金卡」相同（¥10,000.00），各等级的门槛必须严格递增。",
            "threshold: the same as Gold's (¥10,000.00); tier thresholds must strictly increase.",
        ),
        (
            {"code": "Platinum!"},
            "code",
            "编码：需要 1 到 32 个小写字母、数字、- 或 _。",
            "code: must be 1 to 32 lowercase letters, digits, - or _.",
        ),
        (
            {"points_lifetime_months": "0"},
            "points_lifetime_months",
            "积分有效期（月）：需要 1 到 120 之间的整数。",
            "points_lifetime_months: must be a whole number from 1 to 120.",
        ),
        (
            {"points_per_yuan_offset": "20000"},
            "points_per_yuan_offset",
            "每 1 元抵扣所需积分：需要 1 到 10000 之间的整数。",
            "points_per_yuan_offset: must be a whole number from 1 to 10000.",
        ),
        (
            {"discount_service": "150"},
            "discount_service",
            "折扣：请输入 0 到 100 之间的百分比，最多两位小数，如 10 或 12.5。",
            "Discount: a percentage from 0 to 100 with at most two decimals, e.g. 10 or 12.5.",
        ),
        (
            {"points_multiplier": "1,2"},
            "points_multiplier",
            "积分倍数：请输入 0.0001 到 10 之间的数，最多四位小数，如 1.2。",
            "Points multiplier: a number from 0.0001 to 10 with at most four decimals, e.g. 1.2.",
        ),
        (
            {"threshold": "3000.123"},
            "threshold",
            "金额格式不正确，应为最多两位小数的元，如 12.30。",
            None,
        ),
    ],
)
def test_refusals_are_shown_beside_the_field_keeping_what_was_typed(
    hq_admin, client_for, tiers, changes, field, zh, en
):
    before = _tier_state()
    typed = {**SILVER_FORM, "code": "platinum", "name_zh": "铂金卡", "threshold": "20000", **changes}

    response = client_for(hq_admin).post("/settings/tiers/new/", typed)

    assert response.status_code == 400
    html = response.content.decode()
    assert field_errors(html, field) == [zh]
    assert _input_value(html, "name_zh") == "铂金卡"
    assert _input_value(html, field) == typed[field]
    assert _tier_state() == before
    if en is not None:
        english = client_for(hq_admin, language="en").post("/settings/tiers/new/", typed).content.decode()
        assert field_errors(english, field) == [en]


def test_the_first_tier_must_start_at_zero(hq_admin, client_for):
    response = client_for(hq_admin).post("/settings/tiers/new/", SILVER_FORM)

    assert response.status_code == 400
    assert field_errors(response.content.decode(), "threshold") == ["门槛成长值：最低等级必须从 0 开始。"]
    assert not Tier.objects.exists()


def test_deleting_a_tier_nobody_had(hq_admin, client_for, tiers):
    response = client_for(hq_admin).post(f"/settings/tiers/{tiers['diamond'].pk}/delete/", follow=True)

    assert response.status_code == 200
    assert "会员等级 钻石 已删除。" in response.content.decode()
    assert [row[0] for row in _ladder()] == ["regular", "silver", "gold"]
    assert AuditLog.objects.filter(action="loyalty.tier_delete").count() == 1


def test_a_tier_in_use_or_the_lowest_cannot_be_deleted(hq_admin, client_for, tiers, hq, member):
    grant(hq, member, tiers["gold"])
    before = _tier_state()
    client = client_for(hq_admin)

    in_use = client.post(f"/settings/tiers/{tiers['gold'].pk}/delete/")
    lowest = client.post(f"/settings/tiers/{tiers['regular'].pk}/delete/")

    assert in_use.status_code == 409
    assert "会员等级「金卡」已有会员使用或有历史记录，不能删除；可以修改它。" in in_use.content.decode()
    assert lowest.status_code == 400
    assert "门槛成长值：最低等级必须从 0 开始，请先删除其他等级。" in lowest.content.decode()
    assert _tier_state() == before


@pytest.mark.parametrize("who", ["receptionist", "manager", "beautician"])
def test_only_hq_configures_tiers(request, client_for, tiers, who):
    staff = request.getfixturevalue(who)
    client = client_for(staff)
    before = _tier_state()
    gold = tiers["gold"].pk

    answers = [
        client.get("/settings/tiers/").status_code,
        client.get("/settings/tiers/new/").status_code,
        client.get(f"/settings/tiers/{gold}/").status_code,
        client.post("/settings/tiers/new/", {**SILVER_FORM, "code": "x", "threshold": "50000"}).status_code,
        client.post(f"/settings/tiers/{gold}/", {**SILVER_FORM, "threshold": "50000"}).status_code,
        client.post(f"/settings/tiers/{gold}/delete/").status_code,
    ]

    assert answers == [403] * 6
    assert _tier_state() == before
    assert "/settings/tiers/" not in client.get("/settings/stores/").content.decode()


def test_signed_out_goes_to_the_sign_in_page(client, tiers):
    assert client.get("/settings/tiers/")["Location"].startswith("/login/")


def test_an_unknown_tier_is_404(hq_admin, client_for, tiers):
    client = client_for(hq_admin)
    assert client.get("/settings/tiers/999999/").status_code == 404
    assert client.post("/settings/tiers/999999/delete/").status_code == 404


# --- A member's tier ------------------------------------------------------------------------------------------------


def _pay_cash(cashier, member, item, key: str):
    return bill_checkout(
        actor=cashier,
        member=member,
        lines=[LineInput(item_id=item.pk, quantity=1)],
        tenders=[TenderInput(kind="cash", amount=Money(item.price_fen))],
        idempotency_key=key,
    )


@pytest.fixture
def course(hq):
    categories = reference_categories(hq)
    return item_save(
        actor=hq,
        code="course-1766",
        name="疗程 1766",
        category=categories["basic_care"],
        price=Money.parse("1766.00"),
        duration_minutes=60,
    )


def test_member_page_shows_her_tier_progress_and_history(
    receptionist, client_for, tiers, member, course, actor_for, store1
):
    _pay_cash(actor_for(receptionist, store1), member, course, "tp-1")
    client = client_for(receptionist)

    detail = client.get(f"/members/{member.pk}/").content.decode()
    panel = client.get(f"/members/{member.pk}/tier/panel/", headers=HTMX)

    assert re.search(r'data-testid="tier-badge"[^>]*>普通会员<', detail)
    assert f'hx-get="/members/{member.pk}/tier/panel/"' in detail
    assert panel.status_code == 200
    html = panel.content.decode()
    assert re.search(r'data-testid="tier">普通会员<', html)
    assert re.search(r'data-testid="tier-progress">距离银卡还差 ¥1,234<', html)
    assert re.search(r'data-testid="growth">¥1,766.00<', html)
    assert "还没有等级变动。" in html
    assert "等级记录与手工授予" not in html  # a receptionist may not grant
    english = client_for(receptionist, language="en").get(f"/members/{member.pk}/tier/panel/", headers=HTMX)
    assert re.search(r'data-testid="tier-progress">¥1,234 to Silver<', english.content.decode())
    # Without htmx the panel's address leads to the tier page.
    assert client.get(f"/members/{member.pk}/tier/panel/")["Location"] == f"/members/{member.pk}/tier/"


def test_a_bill_crossing_the_threshold_shows_silver_and_the_change(
    receptionist, client_for, tiers, member, course, actor_for, store1
):
    cashier = actor_for(receptionist, store1)
    _pay_cash(cashier, member, course, "tp-1")
    _pay_cash(cashier, member, course, "tp-2")  # 3,532.00: Silver at once

    page = client_for(receptionist).get(f"/members/{member.pk}/tier/")

    html = page.content.decode()
    assert re.search(r'data-testid="tier">银卡<', html)
    assert re.search(r'data-testid="tier-progress">距离金卡还差 ¥6,468<', html)
    rows = re.findall(r"<tr><td class=\"mono nowrap\">([\d-]+)</td><td>([^<]+)</td><td><strong>([^<]+)</strong>", html)
    assert rows == [(local_today(store1).isoformat(), "普通会员", "银卡")]
    assert "消费升级" in html and "¥3,532.00" in html
    assert "手工授予等级" not in html


def test_a_manager_grants_a_tier_by_hand(manager, client_for, tiers, member, store1):
    client = client_for(manager)
    until = local_today(store1) + timedelta(days=30)
    page = client.get(f"/members/{member.pk}/tier/").content.decode()
    assert "手工授予等级" in page and f'<option value="{tiers["gold"].pk}">金卡</option>' in page

    response = client.post(
        f"/members/{member.pk}/tier/grant/",
        {"tier": tiers["gold"].pk, "until": until.isoformat(), "reason": "店庆赠送"},
        follow=True,
    )

    assert response.redirect_chain == [(f"/members/{member.pk}/tier/", 302)]
    html = response.content.decode()
    assert f"已授予 金卡，有效至 {until.isoformat()}。" in html
    assert re.search(r'data-testid="tier">金卡<', html)
    assert f"金卡，至 {until.isoformat()}" in html
    state = MemberTier.objects.get(member=member)
    assert (state.tier_id, state.floor_tier_id, state.floor_until) == (tiers["gold"].pk, tiers["gold"].pk, until)
    change = TierChange.objects.get()
    assert (change.cause, change.note, change.staff_id) == ("grant", "店庆赠送", manager.pk)
    panel = client.get(f"/members/{member.pk}/tier/panel/", headers=HTMX).content.decode()
    assert "等级记录与手工授予" in panel and "手工授予 · 店庆赠送" in panel


def test_grant_refusals_are_shown_beside_the_field(manager, client_for, tiers, member, store1):
    client = client_for(manager)
    before = _tier_state()
    yesterday = local_today(store1) - timedelta(days=1)

    past = client.post(
        f"/members/{member.pk}/tier/grant/",
        {"tier": tiers["gold"].pk, "until": yesterday.isoformat(), "reason": "补偿"},
    )
    no_reason = client.post(
        f"/members/{member.pk}/tier/grant/",
        {"tier": tiers["gold"].pk, "until": (yesterday + timedelta(days=9)).isoformat(), "reason": "  "},
    )
    bad_tier = client.post(
        f"/members/{member.pk}/tier/grant/", {"tier": "999999", "until": "2099-01-01", "reason": "x"}
    )

    assert (past.status_code, no_reason.status_code, bad_tier.status_code) == (400, 400, 400)
    today = local_today(store1).isoformat()
    assert field_errors(past.content.decode(), "until") == [f"截止日期：不能早于今天（{today}）。"]
    assert _input_value(past.content.decode(), "reason") == "补偿"
    assert field_errors(no_reason.content.decode(), "reason") == ["该字段是必填项。"]
    assert field_errors(bad_tier.content.decode(), "tier") != []
    assert _tier_state() == before
    english = client_for(manager, language="en").post(
        f"/members/{member.pk}/tier/grant/",
        {"tier": tiers["gold"].pk, "until": yesterday.isoformat(), "reason": "补偿"},
    )
    assert field_errors(english.content.decode(), "until") == [f"until: must not be before today ({today})."]


def test_an_inactive_member_is_not_granted_a_tier(manager, client_for, tiers, member):
    type(member).objects.filter(pk=member.pk).update(status="inactive")
    before = _tier_state()
    client = client_for(manager)

    page = client.get(f"/members/{member.pk}/tier/").content.decode()
    response = client.post(
        f"/members/{member.pk}/tier/grant/", {"tier": tiers["gold"].pk, "until": "2099-01-01", "reason": "x"}
    )

    assert "手工授予等级" not in page
    assert response.status_code == 400
    assert "不是正常状态，不能授予等级。" in response.content.decode()
    assert _tier_state() == before


def test_a_receptionist_cannot_grant(receptionist, client_for, tiers, member):
    before = _tier_state()

    response = client_for(receptionist).post(
        f"/members/{member.pk}/tier/grant/", {"tier": tiers["gold"].pk, "until": "2099-01-01", "reason": "x"}
    )

    assert response.status_code == 403
    assert _tier_state() == before


def test_a_member_of_another_store_is_404(receptionist2, client_for, tiers, member):
    client = client_for(receptionist2)
    assert client.get(f"/members/{member.pk}/tier/").status_code == 404
    assert client.get(f"/members/{member.pk}/tier/panel/", headers=HTMX).status_code == 404


def test_without_tiers_the_member_page_says_so(receptionist, client_for, member):
    client = client_for(receptionist)

    detail = client.get(f"/members/{member.pk}/").content.decode()
    panel = client.get(f"/members/{member.pk}/tier/panel/", headers=HTMX).content.decode()

    assert 'data-testid="tier-badge"' not in detail
    assert "尚未设置会员等级。" in panel


# --- Checkout screen --------------------------------------------------------------------------------------------------


def test_the_checkout_screen_names_her_tier(receptionist, client_for, tiers, hq, member, actor_for, store1):
    grant(hq, member, tiers["silver"])
    bill = bill_open(actor=actor_for(receptionist, store1), member=type(member).objects.get(pk=member.pk))

    chinese = client_for(receptionist).get(f"/checkout/{bill.pk}/").content.decode()
    english = client_for(receptionist, language="en").get(f"/checkout/{bill.pk}/").content.decode()

    assert re.search(r'data-testid="member-tier">银卡<', chinese)
    assert re.search(r'data-testid="member-tier">Silver<', english)
