"""A member's stored value and points on the front desk: the panel on the member page, the page with the
points lots and their expiry, the recharge (idempotent, errors beside fields), store scoping."""

from __future__ import annotations

import re

import pytest

from meiye.loyalty.models import PointsLot
from meiye.wallet.models import Recharge
from tests.frontdesk.sales_fixtures import *  # noqa: F403
from tests.frontdesk.sales_fixtures import balances, field_errors, sales_state


def _recharge_key(client, member) -> str:
    content = client.get(f"/members/{member.pk}/wallet/").content.decode()
    match = re.search(r'name="idempotency_key" value="([^"]+)"', content)
    assert match is not None
    return match.group(1)


def test_member_page_loads_the_wallet_panel(receptionist, vip, client_for):
    client = client_for(receptionist)

    detail = client.get(f"/members/{vip.pk}/").content.decode()
    panel = client.get(f"/members/{vip.pk}/wallet/panel/", headers={"HX-Request": "true"})

    assert f'hx-get="/members/{vip.pk}/wallet/panel/"' in detail
    assert panel.status_code == 200
    content = panel.content.decode()
    assert re.search(r'data-testid="principal">¥1,000.00<', content)
    assert re.search(r'data-testid="bonus">¥200.00<', content)
    assert re.search(r'data-testid="points">12000<', content)
    lot = PointsLot.objects.get(member=vip)
    assert f"12000 积分于 {lot.expires_on:%Y-%m-%d} 到期" in content
    assert "为她开单" in content


def test_wallet_page_shows_lots_history_and_recharges(receptionist, completed_bill, vip, client_for):
    content = client_for(receptionist).get(f"/members/{vip.pk}/wallet/").content.decode()

    assert re.search(r'data-testid="principal">¥583.33<', content)
    assert re.search(r'data-testid="points">12991<', content)
    # lots, the first to expire first, with their expiry dates
    for lot in PointsLot.objects.filter(member=vip):
        assert f'<td class="mono">{lot.expires_on:%Y-%m-%d}</td>' in content
    assert "消费" in content and "充值" in content and "-¥416.67" in content
    assert "微信" in content and "¥1,000.00" in content


def test_recharge(manager, vip, client_for):
    client = client_for(manager)
    key = _recharge_key(client, vip)

    response = client.post(
        f"/members/{vip.pk}/wallet/recharge/",
        {"amount": "3000", "bonus": "100.00", "tender": "card", "external_ref": "POS-8812", "idempotency_key": key},
    )

    assert response.status_code == 302 and response["Location"] == f"/members/{vip.pk}/wallet/"
    assert balances(vip) == {"principal": 400_000, "bonus": 30_000, "points": 12_000}
    recharge = Recharge.objects.latest("pk")
    assert (
        recharge.amount_fen,
        recharge.bonus_fen,
        recharge.tender,
        recharge.external_ref,
        recharge.idempotency_key,
    ) == (
        300_000,
        10_000,
        "card",
        "POS-8812",
        key,
    )
    assert "已充值 ¥3,000.00，赠送 ¥100.00。" in client.get(response["Location"]).content.decode()


def test_double_submit_of_the_recharge_form_recharges_once(receptionist, vip, client_for):
    client = client_for(receptionist)
    form = {"amount": "500", "tender": "cash", "idempotency_key": _recharge_key(client, vip)}

    first = client.post(f"/members/{vip.pk}/wallet/recharge/", form)
    state = sales_state()
    second = client.post(f"/members/{vip.pk}/wallet/recharge/", form)

    assert first.status_code == second.status_code == 302
    assert sales_state() == state
    assert balances(vip)["principal"] == 150_000


@pytest.mark.parametrize(
    ("language", "data", "field", "message"),
    [
        (None, {"amount": "abc"}, "amount", "金额格式不正确，应为最多两位小数的元，如 12.30。"),
        ("en", {"amount": "abc"}, "amount", "Not an amount in yuan with at most two decimals, e.g. 12.30."),
        (None, {"amount": "0"}, "amount", "金额：必须大于 0。"),
        ("en", {"amount": "0"}, "amount", "amount: must be more than 0."),
        (None, {"amount": ""}, "amount", "该字段是必填项。"),
        (
            "en",
            {"amount": "100", "external_ref": "x" * 65},
            "external_ref",
            "Ensure this value has at most 64 characters (it has 65).",
        ),
    ],
)
def test_recharge_errors_beside_their_field_and_nothing_written(
    receptionist, vip, client_for, language, data, field, message
):
    client = client_for(receptionist, language=language)
    key = _recharge_key(client, vip)
    before = sales_state()

    response = client.post(f"/members/{vip.pk}/wallet/recharge/", {"tender": "cash", "idempotency_key": key, **data})

    assert response.status_code == 400
    content = response.content.decode()
    assert field_errors(content, field) == [message]
    # the same key is kept, so a corrected form is still one recharge
    assert f'name="idempotency_key" value="{key}"' in content
    assert sales_state() == before


def test_recharge_needs_checkout_permission(beautician, vip, client_for):
    client = client_for(beautician)
    page = client.get(f"/members/{vip.pk}/wallet/")
    before = sales_state()

    response = client.post(
        f"/members/{vip.pk}/wallet/recharge/", {"amount": "100", "tender": "cash", "idempotency_key": "b-1"}
    )

    assert page.status_code == 200
    assert "储值充值" not in page.content.decode()
    assert response.status_code == 403
    assert sales_state() == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/members/{pk}/wallet/"),
        ("get", "/members/{pk}/wallet/panel/"),
        ("post", "/members/{pk}/wallet/recharge/"),
    ],
)
def test_wallet_of_a_member_of_another_store_is_404(receptionist, store2, make_member, client_for, method, path):
    other = make_member(store2, phone="13700000005", name="徐汇会员")
    before = sales_state()

    response = getattr(client_for(receptionist), method)(
        path.format(pk=other.pk),
        {"amount": "100", "tender": "cash", "idempotency_key": "scope-1"} if method == "post" else None,
    )

    assert response.status_code == 404
    assert sales_state() == before
