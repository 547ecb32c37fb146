"""The line editor in a real browser: a new quantity changes the line in place (same row, same place), the
editor closes and focus returns to that line's "修改" button; nothing is refused by the CSP (no eval)."""

from __future__ import annotations

import re

import pytest

from meiye.sales.models import Bill, BillLine
from tests.frontdesk.sales_fixtures import *  # noqa: F403
from tests.frontdesk.sales_fixtures import SERUM_BARCODE


@pytest.mark.browser
def test_receptionist_changes_a_quantity_in_place(page, sign_in, receptionist, vip, catalogue, store1):
    from playwright.sync_api import expect

    sign_in(page, "reception1")
    page.goto("/checkout/")
    page.fill("#id_q", "13812345678")
    expect(page.locator("#member-results")).to_contain_text("林小姐")
    page.press("#id_q", "Enter")
    page.wait_for_url(re.compile(r".*/checkout/\d+/$"))
    bill = Bill.objects.get()

    # 基础护理 by search, 精华液 by barcode
    page.fill("#id_q", "基础")
    expect(page.locator("#item-results [data-item-add]")).to_have_count(1)
    page.press("#id_q", "Enter")
    expect(page.locator(".lines-table")).to_contain_text("基础护理")
    page.fill("#id_barcode", SERUM_BARCODE)
    page.press("#id_barcode", "Enter")
    expect(page.locator(".lines-table")).to_contain_text("精华液")
    first, second = BillLine.objects.filter(bill=bill).order_by("pk")

    # three facials
    page.click(f'[data-toggle="#edit-{first.pk}"]')
    quantity = page.locator(f"#id_l{first.pk}-quantity")
    expect(quantity).to_be_focused()
    quantity.fill("3")
    page.locator(f"#edit-{first.pk} button[type=submit]").click()

    expect(page.locator('[data-testid="payable"]')).to_have_text("¥2,050.00")
    rows = page.locator("tr.line-row")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_have_attribute("data-line", str(first.pk))
    expect(rows.nth(0)).to_contain_text("× 3")
    expect(rows.nth(1)).to_have_attribute("data-line", str(second.pk))
    expect(page.locator(f"#edit-{first.pk}")).to_have_class(re.compile(r"\bcollapsed\b"))
    expect(page.locator(f'[data-toggle="#edit-{first.pk}"]')).to_be_focused()
    assert list(BillLine.objects.filter(bill=bill).order_by("pk").values_list("pk", "quantity")) == [
        (first.pk, 3),
        (second.pk, 1),
    ]
    assert page.console_errors == []
