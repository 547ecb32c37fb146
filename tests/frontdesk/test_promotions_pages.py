"""Coupons and promotions at the front desk: the settings pages (HQ), a member's coupons (issue, void), and the
checkout screen that applies the member's coupons and shows the offers before payment (S-05, S-21)."""

from __future__ import annotations

import re

import pytest

from meiye.promotions.models import Coupon, CouponStatus, CouponTemplate, Promotion, PromotionSettings
from meiye.promotions.services import (
    CouponTemplateInput,
    PromotionInput,
    coupon_issue,
    coupon_template_save,
    promotion_save,
)
from meiye.sales.models import Bill, BillStatus
from meiye.sales.services import bill_add_line, bill_open
from tests.frontdesk.sales_fixtures import *  # noqa: F403
from tests.frontdesk.sales_fixtures import balances, field_errors, sales_state

HTMX = {"HX-Request": "true"}


@pytest.fixture
def hq(hq_admin, store1, actor_for):
    return actor_for(hq_admin, store1)


@pytest.fixture
def cashier(receptionist, store1, actor_for):
    return actor_for(receptionist, store1)


@pytest.fixture
def fifty_off(hq) -> CouponTemplate:
    return coupon_template_save(
        actor=hq, data=CouponTemplateInput(name="50元代金券", kind="amount_off", amount_off_fen=5_000, valid_days=30)
    )


@pytest.fixture
def vip_coupon(cashier, vip, fifty_off) -> Coupon:
    return coupon_issue(actor=cashier, member=vip, template=fifty_off, source="manual", idempotency_key="fd-c1")


def _key(content: str) -> str:
    match = re.search(r'name="idempotency_key" value="([^"]+)"', content)
    assert match is not None
    return match.group(1)


def _input_value(content: str, name: str) -> str | None:
    match = re.search(rf'<input[^>]*name="{re.escape(name)}"[^>]*>', content)
    if match is None:
        return None
    value = re.search(r'value="([^"]*)"', match.group(0))
    return value.group(1) if value else ""


# --- Settings pages --------------------------------------------------------------------------------------------


def test_hq_sees_the_coupon_and_promotion_settings(hq_admin, client_for, fifty_off):
    client = client_for(hq_admin)

    pages = {url: client.get(url) for url in ("/settings/coupons/", "/settings/coupons/new/", "/settings/promotions/")}
    pages["edit"] = client.get(f"/settings/coupons/{fifty_off.pk}/")

    assert {url: r.status_code for url, r in pages.items()} == dict.fromkeys(pages, 200)
    listing = pages["/settings/coupons/"].content.decode()
    assert "50元代金券" in listing and "减 ¥50.00" in listing and "领取后 30 天" in listing
    assert '<a href="/settings/coupons/" aria-current="page">优惠券与促销</a>' in listing
    assert _input_value(pages["edit"].content.decode(), "amount_off") == "50.00"
    english = client_for(hq_admin, language="en").get("/settings/promotions/").content.decode()
    assert "Coupons and promotions" in english and "Stacking" in english


@pytest.mark.parametrize(
    "url", ["/settings/coupons/", "/settings/coupons/new/", "/settings/promotions/", "/settings/promotions/new/"]
)
def test_a_receptionist_may_not_open_the_settings(receptionist, client_for, url):
    client = client_for(receptionist)

    assert client.get(url).status_code == 403
    assert client.post(url, {"name": "x", "kind": "amount_off", "amount_off": "50"}).status_code == 403
    assert CouponTemplate.objects.count() == 0 and Promotion.objects.count() == 0
    assert "优惠券与促销" not in client.get("/settings/staff/").content.decode()


def test_hq_creates_a_coupon_template_in_yuan(hq_admin, client_for, catalogue, store1):
    client = client_for(hq_admin)

    response = client.post(
        "/settings/coupons/new/",
        {
            "name": "满300减50",
            "kind": "amount_off",
            "amount_off": "50.00",
            "min_spend": "300",
            "valid_days": "30",
            "per_member_limit": "2",
            "stores": [str(store1.pk)],
            "categories": [str(catalogue["facial"].category_id)],
            "is_active": "on",
        },
    )

    assert response.status_code == 302 and response["Location"] == "/settings/coupons/"
    saved = CouponTemplate.objects.get()
    assert (saved.amount_off_fen, saved.min_spend_fen, saved.valid_days, saved.per_member_limit) == (
        5_000,
        30_000,
        30,
        2,
    )
    assert (saved.store_ids, saved.category_ids, saved.is_active) == (
        [store1.pk],
        [catalogue["facial"].category_id],
        True,
    )


def test_a_percentage_is_typed_as_the_share_paid(hq_admin, client_for):
    client = client_for(hq_admin)

    created = client.post(
        "/settings/promotions/new/",
        {"name": "双十一", "kind": "percent_off", "pay_percent": "88", "item_kind": "service", "priority": "10"},
    )
    promotion = Promotion.objects.get()
    edit = client.get(f"/settings/promotions/{promotion.pk}/").content.decode()
    edited = client.post(
        f"/settings/promotions/{promotion.pk}/",
        {"name": "双十一", "kind": "percent_off", "pay_percent": "85.5", "priority": "10", "is_active": "on"},
    )

    assert created.status_code == 302 and edited.status_code == 302
    assert _input_value(edit, "pay_percent") == "88"
    promotion.refresh_from_db()
    assert (promotion.pay_bp, promotion.item_kind, promotion.priority, promotion.is_active) == (8_550, "", 10, True)


@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("zh-hans", "减免金额：应大于 0 且不超过满减门槛。"),
        ("en", "save: spend X save Y: Y above 0 and not above X."),
    ],
)
def test_a_refused_promotion_shows_the_reason_beside_the_field_and_keeps_what_was_typed(
    hq_admin, client_for, language, message
):
    client = client_for(hq_admin, language=language)
    before = Promotion.objects.count()

    response = client.post(
        "/settings/promotions/new/",
        {"name": "满100减200", "kind": "spend_save", "threshold": "100.00", "save": "200", "priority": "5"},
    )

    assert response.status_code == 400
    content = response.content.decode()
    assert field_errors(content, "save") == [message]
    assert (_input_value(content, "name"), _input_value(content, "threshold"), _input_value(content, "save")) == (
        "满100减200",
        "100.00",
        "200",
    )
    assert Promotion.objects.count() == before


def test_a_coupon_template_needs_a_validity(hq_admin, client_for):
    response = client_for(hq_admin).post(
        "/settings/coupons/new/", {"name": "八八折券", "kind": "percent_off", "pay_percent": "88"}
    )

    assert response.status_code == 400
    assert field_errors(response.content.decode(), "valid_days") == ["有效天数：请填写有效天数，或起止日期。"]
    assert CouponTemplate.objects.count() == 0


def test_a_badly_typed_amount_is_refused_by_the_form(hq_admin, client_for):
    response = client_for(hq_admin).post(
        "/settings/coupons/new/", {"name": "坏券", "kind": "amount_off", "amount_off": "50.001", "valid_days": "3"}
    )

    assert response.status_code == 400
    assert field_errors(response.content.decode(), "amount_off") == ["金额格式不正确，应为最多两位小数的元，如 12.30。"]
    assert CouponTemplate.objects.count() == 0


def test_hq_sets_the_stacking_policy(hq_admin, client_for):
    client = client_for(hq_admin)

    saved = client.post("/settings/promotions/stacking/", {"stacking": "stack"})
    refused = client.post("/settings/promotions/stacking/", {"stacking": "both"})

    assert saved.status_code == 302
    assert PromotionSettings.objects.get().stacking == "stack"
    assert refused.status_code == 400 and field_errors(refused.content.decode(), "stacking")
    page = client.get("/settings/promotions/").content.decode()
    assert re.search(r'<input type="radio" name="stacking" value="stack"[^>]* checked', page)


# --- A member's coupons -------------------------------------------------------------------------------------------


def test_the_member_page_shows_her_coupons(receptionist, client_for, vip, vip_coupon):
    client = client_for(receptionist)

    detail = client.get(f"/members/{vip.pk}/").content.decode()
    panel = client.get(f"/members/{vip.pk}/coupons/panel/", headers=HTMX)
    page = client.get(f"/members/{vip.pk}/coupons/")

    assert f'hx-get="/members/{vip.pk}/coupons/panel/"' in detail
    assert panel.status_code == 200
    assert "50元代金券" in panel.content.decode() and vip_coupon.code in panel.content.decode()
    assert page.status_code == 200
    content = page.content.decode()
    assert vip_coupon.code in content and "可用" in content and vip_coupon.valid_until.isoformat() in content


def test_issuing_a_coupon_by_hand_is_idempotent(receptionist, client_for, vip, fifty_off):
    client = client_for(receptionist)
    form = {
        "template": str(fifty_off.pk),
        "idempotency_key": _key(client.get(f"/members/{vip.pk}/coupons/").content.decode()),
    }

    first = client.post(f"/members/{vip.pk}/coupons/issue/", form)
    again = client.post(f"/members/{vip.pk}/coupons/issue/", form)

    assert first.status_code == 302 and again.status_code == 302
    coupon = Coupon.objects.get()
    assert (coupon.member_id, coupon.template_id, coupon.status, coupon.source) == (
        vip.pk,
        fifty_off.pk,
        "active",
        "manual",
    )


def test_issuing_without_the_form_key_is_refused(receptionist, client_for, vip, fifty_off):
    response = client_for(receptionist).post(f"/members/{vip.pk}/coupons/issue/", {"template": str(fifty_off.pk)})

    assert response.status_code == 400
    assert "这张表单已失效，请刷新页面后重试。" in response.content.decode()
    assert Coupon.objects.count() == 0


def test_a_beautician_may_see_but_not_issue(beautician, client_for, vip, fifty_off):
    client = client_for(beautician)

    page = client.get(f"/members/{vip.pk}/coupons/")
    issued = client.post(f"/members/{vip.pk}/coupons/issue/", {"template": str(fifty_off.pk), "idempotency_key": "b1"})

    assert page.status_code == 200 and "发放优惠券" not in page.content.decode()
    assert issued.status_code == 403 and Coupon.objects.count() == 0


def test_voiding_a_coupon_needs_a_reason(receptionist, client_for, vip, vip_coupon):
    client = client_for(receptionist)
    url = f"/members/{vip.pk}/coupons/{vip_coupon.pk}/void/"

    refused = client.post(url, {f"v{vip_coupon.pk}-reason": ""})
    vip_coupon.refresh_from_db()
    status_after_refusal = vip_coupon.status
    voided = client.post(url, {f"v{vip_coupon.pk}-reason": "顾客放弃"})

    assert refused.status_code == 400 and field_errors(refused.content.decode(), f"v{vip_coupon.pk}-reason")
    assert status_after_refusal == CouponStatus.ACTIVE
    assert voided.status_code == 302
    vip_coupon.refresh_from_db()
    assert vip_coupon.status == CouponStatus.VOID


def test_a_coupon_of_another_store_member_is_not_found(receptionist, client_for, make_member, store2, hq, fifty_off):
    other = make_member(store2, name="徐汇会员", phone="13700000009")
    coupon = coupon_issue(actor=hq, member=other, template=fifty_off, source="manual", idempotency_key="fd-other")
    client = client_for(receptionist)

    assert client.get(f"/members/{other.pk}/coupons/").status_code == 404
    assert (
        client.post(f"/members/{other.pk}/coupons/{coupon.pk}/void/", {f"v{coupon.pk}-reason": "x"}).status_code == 404
    )
    coupon.refresh_from_db()
    assert coupon.status == CouponStatus.ACTIVE


# --- The checkout screen ---------------------------------------------------------------------------------------------


def _open_bill(cashier, member, *items) -> Bill:
    bill = bill_open(actor=cashier, member=member)
    for item in items:
        bill_add_line(actor=cashier, bill=bill, item=item)
    return Bill.objects.get(pk=bill.pk)


def _payable(content: str) -> str:
    match = re.search(r'data-testid="payable">([^<]+)<', content)
    assert match is not None
    return match.group(1)


def test_S05_the_cashier_applies_a_coupon_and_the_bill_is_charged_after_it(
    receptionist, client_for, cashier, vip, vip_coupon, catalogue
):
    # given: 林小姐 (1,000.00 principal, 200.00 bonus, 12,000 points) holds a 50.00-off coupon; 基础护理 600.00
    bill = _open_bill(cashier, vip, catalogue["facial"])
    client = client_for(receptionist)
    screen = client.get(f"/checkout/{bill.pk}/").content.decode()
    assert f'name="coupons" value="{vip_coupon.pk}"' in screen and _payable(screen) == "¥600.00"

    # when: she ticks the coupon, then pays 1,000 points (10.00) and 540.00 stored value
    chosen = client.post(f"/checkout/{bill.pk}/coupons/", {"coupons": [str(vip_coupon.pk)]}, headers=HTMX)
    fragment = chosen.content.decode()
    done = client.post(
        f"/checkout/{bill.pk}/complete/",
        {
            "idempotency_key": _key(fragment),
            "coupons": [str(vip_coupon.pk)],
            "points": "1000",
            "stored_value_amount": "540.00",
        },
    )

    # then: the screen showed 550.00 and the coupon's line; the bill took 50.00 off and the coupon is used
    assert chosen.status_code == 200
    assert _payable(fragment) == "¥550.00" and "优惠券：50元代金券" in fragment and "−¥50.00" in fragment
    assert f'<input type="hidden" name="coupons" value="{vip_coupon.pk}">' in fragment
    assert done.status_code == 302 and done["Location"] == f"/bills/{bill.pk}/receipt/?done=1"
    bill.refresh_from_db()
    assert (bill.status, bill.discount_total_fen, bill.payable_total_fen) == (BillStatus.COMPLETED, 5_000, 55_000)
    assert (bill.earning_total_fen, bill.points_earned) == (45_000, 450)
    assert balances(vip) == {"principal": 55_000, "bonus": 11_000, "points": 11_450}
    vip_coupon.refresh_from_db()
    assert (vip_coupon.status, vip_coupon.used_bill_id) == (CouponStatus.USED, bill.pk)
    receipt = client.get(f"/bills/{bill.pk}/receipt/").content.decode()
    assert f"优惠券：50元代金券 {vip_coupon.code}" in receipt
    assert '<span class="mono" data-testid="offer-discount">−¥50.00</span>' in receipt
    english = client_for(receptionist, language="en").get(f"/bills/{bill.pk}/receipt/").content.decode()
    assert f"Coupon: 50元代金券 {vip_coupon.code}" in english


def test_a_coupon_the_bill_does_not_qualify_for_is_refused_beside_the_coupons(
    receptionist, client_for, cashier, hq, vip, catalogue
):
    template = coupon_template_save(
        actor=hq,
        data=CouponTemplateInput(
            name="满1000减100", kind="amount_off", amount_off_fen=10_000, min_spend_fen=100_000, valid_days=7
        ),
    )
    coupon = coupon_issue(actor=cashier, member=vip, template=template, source="manual", idempotency_key="fd-min")
    bill = _open_bill(cashier, vip, catalogue["facial"])
    client = client_for(receptionist)
    before = sales_state()

    response = client.post(f"/checkout/{bill.pk}/coupons/", {"coupons": [str(coupon.pk)]}, headers=HTMX)

    assert response.status_code == 400
    content = response.content.decode()
    assert field_errors(content, "coupons") == [f"优惠券 {coupon.code}：适用项目需满 ¥1,000.00，本单适用金额 ¥600.00。"]
    assert _payable(content) == "¥600.00" and 'type="hidden" name="coupons"' not in content
    assert sales_state() == before
    coupon.refresh_from_db()
    assert coupon.status == CouponStatus.ACTIVE


def test_S21_the_screen_shows_the_promotion_before_payment(receptionist, client_for, cashier, hq, vip, catalogue):
    # given: 满1000减100 on services
    promotion_save(
        actor=hq,
        data=PromotionInput(
            name="满1000减100", kind="spend_save", threshold_fen=100_000, save_fen=10_000, item_kind="service"
        ),
    )
    bill = _open_bill(cashier, vip, catalogue["facial"], catalogue["lifting"], catalogue["serum"])
    client = client_for(receptionist)

    # when
    screen = client.get(f"/checkout/{bill.pk}/").content.decode()
    done = client.post(f"/checkout/{bill.pk}/complete/", {"idempotency_key": _key(screen), "cash_amount": "1750.00"})

    # then: services 1,600.00 → 100.00 off split 37.50 + 62.50; the shown 1,750.00 is what was charged
    assert _payable(screen) == "¥1,750.00"
    assert "促销：满1000减100 −¥37.50" in screen and "促销：满1000减100 −¥62.50" in screen
    assert done.status_code == 302
    bill.refresh_from_db()
    assert (bill.status, bill.payable_total_fen, bill.discount_total_fen) == (BillStatus.COMPLETED, 175_000, 10_000)


def test_a_walk_in_bill_shows_no_coupons(receptionist, client_for, cashier, catalogue):
    bill = _open_bill(cashier, None, catalogue["serum"])

    screen = client_for(receptionist).get(f"/checkout/{bill.pk}/").content.decode()

    assert 'id="coupon-form"' not in screen and _payable(screen) == "¥250.00"


def test_issuing_above_the_per_member_limit_is_refused_beside_the_coupon(receptionist, client_for, hq, vip):
    template = coupon_template_save(
        actor=hq,
        data=CouponTemplateInput(
            name="生日券", kind="amount_off", amount_off_fen=2_000, valid_days=7, per_member_limit=1
        ),
    )
    client = client_for(receptionist)
    for _ in range(2):
        key = _key(client.get(f"/members/{vip.pk}/coupons/").content.decode())
        response = client.post(
            f"/members/{vip.pk}/coupons/issue/", {"template": str(template.pk), "idempotency_key": key}
        )

    assert response.status_code == 400
    assert field_errors(response.content.decode(), "template") == ["该会员已领取 1 张“生日券”，每人限 1 张。"]
    assert Coupon.objects.filter(member=vip).count() == 1
