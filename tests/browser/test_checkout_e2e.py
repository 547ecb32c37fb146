"""Checkout in a real browser: a receptionist checks out a member with two lines (one found by search, one
scanned) and a split tender (part stored value, part cash with change), sees the receipt; then a store manager
refunds one line. The balances are checked in the database after each step."""

from __future__ import annotations

import re

import pytest

from meiye.sales.models import Bill, BillLine, BillStatus, Refund, Tender
from tests.frontdesk.sales_fixtures import *  # noqa: F403
from tests.frontdesk.sales_fixtures import SERUM_BARCODE, balances

CHECKOUT_SHOT = "/tmp/meiye-checkout.png"  # noqa: S108 - fixed places to look at the layout
RECEIPT_SHOT = "/tmp/meiye-receipt-80mm.png"  # noqa: S108
RECEIPT_PRINT_SHOT = "/tmp/meiye-receipt-80mm-print.png"  # noqa: S108
REFUND_SHOT = "/tmp/meiye-refund.png"  # noqa: S108


@pytest.mark.browser
def test_receptionist_checks_out_and_manager_refunds_a_line(
    page, sign_in, receptionist, manager, vip, catalogue, store1
):
    from playwright.sync_api import expect

    assert balances(vip) == {"principal": 100_000, "bonus": 20_000, "points": 12_000}
    sign_in(page, "reception1")

    # Open her bill: the full phone number and Enter.
    page.click("nav.salesnav >> text=收银台")
    page.wait_for_url("**/checkout/")
    page.fill("#id_q", "13812345678")
    expect(page.locator("#member-results")).to_contain_text("林小姐")
    page.press("#id_q", "Enter")
    page.wait_for_url(re.compile(r".*/checkout/\d+/$"))
    bill = Bill.objects.get()
    assert (bill.member_id, bill.status) == (vip.pk, BillStatus.OPEN)
    expect(page.locator('.co-member [data-testid="principal"]')).to_have_text("¥1,000.00")

    # One line found by search (Enter adds the only match), one scanned.
    lines = page.locator(".lines-table")
    page.fill("#id_q", "基础")
    expect(page.locator("#item-results [data-item-add]")).to_have_count(1)
    page.press("#id_q", "Enter")
    expect(lines).to_contain_text("基础护理")
    page.fill("#id_barcode", SERUM_BARCODE)
    page.press("#id_barcode", "Enter")
    expect(lines).to_contain_text("精华液")
    expect(page.locator('[data-testid="payable"]')).to_have_text("¥850.00")
    expect(page.locator("#id_barcode")).to_have_value("")
    assert list(BillLine.objects.filter(bill=bill).values_list("name", "line_total_fen")) == [
        ("基础护理", 60_000),
        ("精华液", 25_000),
    ]

    # Split tender: 500.00 stored value, the rest in cash ("补齐" fills what is still due), 400.00 handed over.
    page.fill("#id_stored_value_amount", "500")
    page.click('[data-fill="#id_cash_amount"]')
    expect(page.locator("#id_cash_amount")).to_have_value("350.00")
    page.fill("#id_cash_received", "400")
    expect(page.locator("[data-change]")).to_have_text("¥50.00")
    expect(page.locator("[data-due]")).to_have_text("¥0.00")
    page.screenshot(path=CHECKOUT_SHOT, full_page=True)

    # F9 pays.
    page.keyboard.press("F9")
    page.wait_for_url(re.compile(rf".*/bills/{bill.pk}/receipt/\?done=1$"))
    expect(page.locator(".done-banner")).to_contain_text("¥50.00")
    bill.refresh_from_db()
    assert (bill.status, bill.payable_total_fen, bill.points_earned) == (BillStatus.COMPLETED, 85_000, 991)
    assert list(Tender.objects.filter(bill=bill).values_list("kind", "amount_fen", "change_fen")) == [
        ("stored_value", 50_000, 0),
        ("cash", 35_000, 5_000),
    ]
    assert balances(vip) == {"principal": 58_333, "bonus": 11_667, "points": 12_991}
    receipt = page.locator("article.receipt")
    expect(receipt).to_contain_text("林小姐")
    expect(receipt.locator('[data-testid="principal-after"]')).to_have_text("¥583.33")
    expect(receipt.locator('[data-testid="points-after"]')).to_have_text("12991")
    page.screenshot(path=RECEIPT_SHOT, full_page=True)
    page.emulate_media(media="print")
    receipt.screenshot(path=RECEIPT_PRINT_SHOT)
    page.emulate_media(media="screen")
    # Reloading the checkout screen cannot charge again: the bill is no longer open.
    page.goto(f"/checkout/{bill.pk}/")
    page.wait_for_url(f"**/bills/{bill.pk}/receipt/")
    assert balances(vip) == {"principal": 58_333, "bonus": 11_667, "points": 12_991}
    assert page.console_errors == []

    # A store manager refunds the serum to the original tenders.
    page.context.clear_cookies()
    sign_in(page, "manager1")
    page.goto(f"/bills/{bill.pk}/")
    page.click("text=退款")
    page.wait_for_url(f"**/bills/{bill.pk}/refund/")
    serum = BillLine.objects.get(bill=bill, name="精华液")
    page.check('input[name="mode"][value="lines"]')
    page.fill(f"#id_qty_{serum.pk}", "1")
    page.fill("#id_reason", "过敏退货")
    page.screenshot(path=REFUND_SHOT, full_page=True)
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("text=确认退款")
    page.wait_for_url(f"**/bills/{bill.pk}/")
    expect(page.locator(".msg-success")).to_contain_text("已退款 ¥250.00")
    refund = Refund.objects.get()
    assert (refund.amount_fen, refund.created_by_id, refund.reason) == (25_000, manager.pk, "过敏退货")
    # 250.00 back over 500 : 350 -> 147.06 stored value (122.55 principal + 24.51 bonus), 102.94 cash;
    # the serum's 450 points are taken back
    assert balances(vip) == {"principal": 58_333 + 12_255, "bonus": 11_667 + 2_451, "points": 12_991 - 450}
    assert BillLine.objects.get(pk=serum.pk).refunded_quantity == 1
    assert page.console_errors == []
