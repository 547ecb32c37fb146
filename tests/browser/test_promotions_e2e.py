"""Coupons at the checkout in a real browser: the receptionist ticks 林小姐's 50.00-off coupon, the screen shows
the bill priced with it (htmx), "fill the rest" fills the amount after the coupon, F9 completes and the receipt
names the coupon (S-05)."""

from __future__ import annotations

import re

import pytest

from meiye.promotions.models import CouponStatus
from meiye.promotions.services import CouponTemplateInput, coupon_issue, coupon_template_save
from meiye.sales.models import Bill, BillStatus
from tests.frontdesk.sales_fixtures import *  # noqa: F403
from tests.frontdesk.sales_fixtures import balances

COUPON_SHOT = "/tmp/meiye-checkout-coupon.png"  # noqa: S108 - a fixed place to look at the layout
COUPON_RECEIPT_SHOT = "/tmp/meiye-receipt-coupon.png"  # noqa: S108


@pytest.mark.browser
def test_receptionist_applies_a_coupon_at_the_checkout(
    page, sign_in, receptionist, hq_admin, vip, catalogue, store1, actor_for
):
    from playwright.sync_api import expect

    template = coupon_template_save(
        actor=actor_for(hq_admin, store1),
        data=CouponTemplateInput(name="50元代金券", kind="amount_off", amount_off_fen=5_000, valid_days=30),
    )
    coupon = coupon_issue(
        actor=actor_for(receptionist, store1), member=vip, template=template, source="manual", idempotency_key="e2e"
    )
    sign_in(page, "reception1")

    # Her bill with 基础护理 600.00.
    page.goto(f"/members/{vip.pk}/")
    expect(page.locator("#coupons-panel")).to_contain_text(coupon.code)
    page.click("#wallet-panel >> text=为她开单")
    page.wait_for_url(re.compile(r".*/checkout/\d+/$"))
    bill = Bill.objects.get()
    page.fill("#id_q", "基础")
    expect(page.locator("#item-results [data-item-add]")).to_have_count(1)
    page.press("#id_q", "Enter")
    expect(page.locator('[data-testid="payable"]')).to_have_text("¥600.00")

    # Ticking the coupon prices the bill with it.
    page.check(f'#coupon-form input[value="{coupon.pk}"]')
    expect(page.locator('[data-testid="payable"]')).to_have_text("¥550.00")
    expect(page.locator(".lines-table")).to_contain_text("优惠券：50元代金券")
    page.click('[data-fill="#id_stored_value_amount"]')
    expect(page.locator("#id_stored_value_amount")).to_have_value("550.00")
    page.screenshot(path=COUPON_SHOT, full_page=True)

    # F9 pays; the receipt names the coupon.
    page.keyboard.press("F9")
    page.wait_for_url(re.compile(rf".*/bills/{bill.pk}/receipt/\?done=1$"))
    expect(page.locator('[data-testid="offer-discount"]')).to_have_text("−¥50.00")
    page.screenshot(path=COUPON_RECEIPT_SHOT, full_page=True)
    bill.refresh_from_db()
    assert (bill.status, bill.discount_total_fen, bill.payable_total_fen) == (BillStatus.COMPLETED, 5_000, 55_000)
    coupon.refresh_from_db()
    assert (coupon.status, coupon.used_bill_id) == (CouponStatus.USED, bill.pk)
    assert balances(vip)["principal"] == 100_000 - 45_833
    assert page.console_errors == []
