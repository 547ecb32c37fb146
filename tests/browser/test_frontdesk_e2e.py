"""The front desk in a real browser: register, search as you type, reveal (audited), store scoping."""

from __future__ import annotations

import re

import pytest

from meiye.audit.models import AuditLog
from meiye.members.models import Member

SCREENSHOT = "/tmp/meiye-member.png"  # noqa: S108 - a fixed place to look at the layout


@pytest.mark.browser
def test_receptionist_creates_finds_and_reveals_member(page, sign_in, receptionist, store1, make_member):
    from playwright.sync_api import expect

    make_member(store1, phone="13900000001", name="李娜")
    sign_in(page, "reception1")

    # Register a member.
    page.click("text=新建会员")
    page.wait_for_url("**/members/new/")
    page.fill("#id_name", "王丽")
    page.fill("#id_phone", "13812345678")
    page.fill("#id_birthday", "1990-03-07")
    page.fill("#id_tags", "VIP, 敏感肌")
    page.check("#id_consent_data")
    page.check("#id_consent_photo")
    page.click("text=保存并建档")
    page.wait_for_url(re.compile(r".*/members/\d+/$"))
    expect(page.locator(".msg-success")).to_contain_text("已建档")
    member = Member.objects.get(name="王丽")
    assert member.home_store_id == store1.pk

    # Find her by phone in the search-as-you-type list.
    page.click("nav.mainnav >> text=会员")
    page.wait_for_url("**/members/")
    results = page.locator("#member-results")
    expect(results).to_contain_text("李娜")
    page.fill("#id_q", "13812345678")
    expect(results).not_to_contain_text("李娜")
    expect(results).to_contain_text(member.member_no)
    expect(results).to_contain_text("138****5678")
    assert "13812345678" not in results.inner_text()
    page.wait_for_url("**/members/?q=13812345678*")  # the search is in the address bar (hx-push-url)

    # Open her and reveal the phone.
    page.click(f"#member-results >> text={member.member_no}")
    page.wait_for_url(f"**/members/{member.pk}/")
    slot = page.locator('.reveal-slot[data-field="phone"]')
    expect(slot).to_contain_text("138****5678")
    slot.locator("button.reveal").click()
    expect(slot.locator(".revealed")).to_have_text("13812345678")
    page.screenshot(path=SCREENSHOT, full_page=True)

    row = AuditLog.objects.get(action="member.reveal")
    assert (row.staff_id, row.object_type, row.object_id, row.detail) == (
        receptionist.pk,
        "members.Member",
        str(member.pk),
        {"field": "phone"},
    )
    # No script was refused by the Content-Security-Policy and nothing failed to load.
    assert page.console_errors == []


@pytest.mark.browser
def test_store_scoping_in_browser(page, sign_in, receptionist, store1, store2, make_member):
    other = make_member(store2, phone="13700000002", name="徐汇会员")
    sign_in(page, "reception1")

    options = page.locator("#store-switch option").all_inner_texts()
    assert options == ["静安店"]

    response = page.goto(f"/members/{other.pk}/")
    assert response is not None and response.status == 404
    assert "找不到页面" in page.locator("main").inner_text()
    assert "徐汇会员" not in page.content()

    page.goto("/members/")
    page.fill("#id_q", "13700000002")
    page.locator("#member-results").get_by_text("没有找到匹配").wait_for()
    assert "徐汇会员" not in page.locator("#member-results").inner_text()
