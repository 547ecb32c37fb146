"""Cards and prepaid in a real browser (issue 5's acceptance test): a receptionist sells the S-19 combo package at
the checkout, the member signs its contract on the signature pad, the next visit pays a facial with one session,
then the member's card MY00012345 is reported lost and replaced for the store's 10.00 fee."""

from __future__ import annotations

import re

import pytest

from meiye.cards.models import MemberCard
from meiye.cards.services import card_issue, card_settings_set
from meiye.catalog.services import item_save
from meiye.contracts.models import Contract
from meiye.core.money import Money
from meiye.ledger.models import Journal
from meiye.packages.models import MemberPackage, MemberPackageItem
from meiye.packages.services import ProductItemInput, package_product_save
from meiye.sales.models import Bill, BillStatus
from tests.frontdesk.sales_fixtures import *  # noqa: F403

CONTRACT_SHOT = "/tmp/meiye-contract-signed.png"  # noqa: S108 - fixed places to look at the layout
CARDS_SHOT = "/tmp/meiye-card-replaced.png"  # noqa: S108


@pytest.fixture
def combo(hq_admin, store1, actor_for, catalogue):
    """S-19's combo: 5 facials (valid 6 months) and 3 neck-and-shoulder sessions (valid 12 months)."""
    hq = actor_for(hq_admin, store1)
    neck = item_save(
        actor=hq,
        code="neck-shoulder",
        name="肩颈护理",
        category=catalogue["facial"].category,
        price=Money.parse("198.00"),
        duration_minutes=45,
    )
    return package_product_save(
        actor=hq,
        code="combo-face-neck",
        name="面部肩颈组合套餐",
        price=Money.parse("2400.00"),
        kind="combo",
        items=[
            ProductItemInput(service_id=catalogue["facial"].pk, count=5, validity_value=6),
            ProductItemInput(service_id=neck.pk, count=3, validity_value=12),
        ],
    )


@pytest.fixture
def card_holder(make_member, store1, receptionist, hq_admin, actor_for):
    """陈女士 with card MY00012345; the store charges 10.00 for a replacement card."""
    member = make_member(store1, name="陈女士", phone="13700002222")
    card_issue(
        actor=actor_for(receptionist, store1),
        member=member,
        medium="physical",
        number="MY00012345",
        idempotency_key="e2e-issue",
    )
    card_settings_set(
        actor=actor_for(hq_admin, store1),
        store=store1,
        replacement_fee=Money.parse("10.00"),
        allow_balance_transfer=False,
        require_payment_auth=False,
    )
    return member


def _open_bill_for(page, phone: str) -> None:
    page.goto("/checkout/")
    page.fill("#id_q", phone)
    page.press("#id_q", "Enter")
    page.wait_for_url(re.compile(r".*/checkout/\d+/$"))


def _add_item(page, query: str, name: str) -> None:
    from playwright.sync_api import expect

    page.fill("#id_q", query)
    expect(page.locator("#item-results [data-item-add]")).to_have_count(1)
    page.press("#id_q", "Enter")
    expect(page.locator(".lines-table")).to_contain_text(name)


@pytest.mark.browser
def test_sell_a_combo_sign_its_contract_use_a_session_report_the_card_lost_and_replace_it(
    page, sign_in, card_holder, combo, catalogue
):
    from playwright.sync_api import expect

    member = card_holder
    sign_in(page, "reception1")

    # 1. The combo is sold at the checkout and paid by WeChat.
    _open_bill_for(page, "13700002222")
    _add_item(page, "组合套餐", "面部肩颈组合套餐")
    expect(page.locator('[data-testid="payable"]')).to_have_text("¥2,400.00")
    page.click('[data-fill="#id_wechat_amount"]')
    page.keyboard.press("F9")
    page.wait_for_url(re.compile(r".*/bills/\d+/receipt/\?done=1$"))
    package = MemberPackage.objects.get(member=member)
    assert package.price_paid_fen == 240_000
    items = {i.name: i for i in MemberPackageItem.objects.filter(member_package=package)}
    assert {name: (i.count, i.remaining) for name, i in items.items()} == {"基础护理": (5, 5), "肩颈护理": (3, 3)}

    # 2. The receipt offers the contract; the member signs on the pad.
    page.click('[data-testid="sign-contract"]')
    page.wait_for_url(re.compile(r".*/contracts/\d+/sign/$"))
    pad = page.locator("canvas[data-signature-pad]")
    box = pad.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 40, box["y"] + 120)
    page.mouse.down()
    for step in range(1, 12):
        page.mouse.move(box["x"] + 40 + step * 35, box["y"] + 120 + (30 if step % 2 else -30))
    page.mouse.up()
    agree = page.locator("#id_agree")
    if agree.count():
        agree.check()
    page.click("[data-signature-confirm]")
    page.wait_for_url(re.compile(r".*/contracts/\d+/$"))
    contract = Contract.objects.get(pk=package.contract_id)
    assert contract.status == "signed"
    assert contract.signature
    page.screenshot(path=CONTRACT_SHOT, full_page=True)

    # 3. Her next visit: a facial paid with one session of the combo.
    _open_bill_for(page, "13700002222")
    _add_item(page, "基础", "基础护理")
    facial_item = items["基础护理"]
    page.select_option("#id_package_item", str(facial_item.pk))
    page.keyboard.press("F9")
    page.wait_for_url(re.compile(r".*/bills/\d+/receipt/\?done=1$"))
    expect(page.locator("body")).to_contain_text("面部肩颈组合套餐 · 基础护理")
    facial_item.refresh_from_db()
    assert facial_item.remaining == 4
    session_bill = Bill.objects.filter(member=member, status=BillStatus.COMPLETED).order_by("-pk").first()
    assert session_bill is not None and session_bill.earning_total_fen == 0

    # 4. The card is reported lost, then replaced for the 10.00 fee paid in cash.
    page.goto(f"/members/{member.pk}/cards/")
    page.locator('section[aria-labelledby="h-lost"] button[type=submit]').click()
    expect(page.locator("body")).to_contain_text("挂失")
    assert MemberCard.objects.get(number="MY00012345").status == "lost"
    replace = page.locator('section[aria-labelledby="h-replace"]')
    replace.locator("select[name$='fee_tender']").select_option("cash")
    replace.locator("button[type=submit].primary").click()
    expect(page.locator('[data-testid="balance"]')).to_be_visible()
    old = MemberCard.objects.get(number="MY00012345")
    assert old.status == "replaced"
    new = MemberCard.objects.get(member=member, status="active")
    assert new.number != "MY00012345"
    assert Journal.objects.filter(code="cards.replace_fee").count() == 1
    # the sessions stay with her
    assert MemberPackageItem.objects.get(pk=facial_item.pk).remaining == 4
    page.screenshot(path=CARDS_SHOT, full_page=True)
    assert [e for e in page.console_errors if "status of 400" not in e] == []
