"""Adjusting a member's points by hand on the stored value and points page: money.adjust, a reason beside
its field, audited, the same form sent twice adjusts once."""

from __future__ import annotations

import re

from meiye.audit.models import AuditLog
from meiye.loyalty.models import PointsLot
from tests.frontdesk.sales_fixtures import *  # noqa: F403
from tests.frontdesk.sales_fixtures import balances, field_errors, sales_state


def _adjust_key(client, member) -> str:
    content = client.get(f"/members/{member.pk}/wallet/").content.decode()
    form = content[content.index('class="points-adjust-form"') :]
    match = re.search(r'name="idempotency_key" value="([^"]+)"', form)
    assert match is not None
    return match.group(1)


def test_a_manager_adjusts_points_and_the_same_form_twice_adjusts_once(manager, vip, client_for):
    client = client_for(manager)
    form = {"points": "-2000", "reason": "重复积分 duplicate", "idempotency_key": _adjust_key(client, vip)}

    first = client.post(f"/members/{vip.pk}/points/adjust/", form)
    state = sales_state()
    second = client.post(f"/members/{vip.pk}/points/adjust/", form)

    assert first.status_code == second.status_code == 302
    assert first["Location"] == f"/members/{vip.pk}/wallet/"
    assert sales_state() == state
    assert balances(vip)["points"] == 10_000
    assert PointsLot.objects.get(member=vip).remaining == 10_000
    log = AuditLog.objects.get(action="loyalty.points_adjust")
    assert log.detail["reason"] == "重复积分 duplicate"
    assert "已调整积分 -2000。" in client.get(first["Location"]).content.decode()


def test_the_reason_is_required_and_shown_beside_its_field(manager, vip, client_for):
    client = client_for(manager)
    state = sales_state()

    response = client.post(
        f"/members/{vip.pk}/points/adjust/", {"points": "100", "reason": "", "idempotency_key": "k-1"}
    )
    too_much = client.post(
        f"/members/{vip.pk}/points/adjust/", {"points": "-12001", "reason": "扣减", "idempotency_key": "k-2"}
    )

    assert response.status_code == 400
    assert field_errors(response.content.decode(), "reason") == ["该字段是必填项。"]
    assert too_much.status_code == 400
    assert field_errors(too_much.content.decode(), "points")[0].startswith("积分不足")
    assert sales_state() == state


def test_a_receptionist_sees_no_form_and_may_not_post(receptionist, vip, client_for):
    client = client_for(receptionist)
    state = sales_state()

    page = client.get(f"/members/{vip.pk}/wallet/").content.decode()
    response = client.post(
        f"/members/{vip.pk}/points/adjust/", {"points": "100", "reason": "x", "idempotency_key": "k-1"}
    )

    assert "points-adjust-form" not in page
    assert response.status_code == 403
    assert sales_state() == state
