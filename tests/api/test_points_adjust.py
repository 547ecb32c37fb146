"""POST /api/v1/members/{id}/points/adjust/: points by hand (money.adjust, a reason, audited, Idempotency-Key)."""

from __future__ import annotations

import pytest

from meiye.audit.models import AuditLog
from meiye.loyalty.models import PointsLot
from meiye.loyalty.services import points_balance
from tests.factories import StaffFactory
from tests.ledger.support import ledger_state


@pytest.fixture
def member(make_member, store1):
    return make_member(store1)


def url(member) -> str:
    return f"/api/v1/members/{member.pk}/points/adjust/"


def test_a_manager_adjusts_points_with_a_reason(manager_api, member):
    response = manager_api.post(
        url(member), {"points": 300, "reason": "补录漏积分"}, format="json", HTTP_IDEMPOTENCY_KEY="adj-1"
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["code"], body["reason"], body["points"]["points"]) == ("points.adjust", "补录漏积分", 300)
    assert PointsLot.objects.get(journal_id=body["journal_id"]).source_code == "adjust"
    assert AuditLog.objects.filter(action="loyalty.points_adjust").count() == 1

    # a replay answers the same and changes nothing
    before = ledger_state()
    replay = manager_api.post(
        url(member), {"points": 300, "reason": "补录漏积分"}, format="json", HTTP_IDEMPOTENCY_KEY="adj-1"
    )
    assert replay.status_code == 201
    assert replay.json()["journal_id"] == body["journal_id"]
    assert ledger_state() == before
    assert AuditLog.objects.filter(action="loyalty.points_adjust").count() == 1


@pytest.mark.parametrize(
    ("sent", "status", "code", "field"),
    [
        ({"points": 100, "reason": ""}, 400, "input.invalid", "reason"),
        ({"points": 100}, 400, "input.invalid", "reason"),
        ({"points": 0, "reason": "x"}, 400, "points.invalid_amount", "points"),
        ({"points": -1, "reason": "扣减"}, 400, "points.insufficient", "points"),
    ],
)
def test_refusals_change_nothing(manager_api, member, sent, status, code, field):
    before = ledger_state()

    response = manager_api.post(url(member), sent, format="json", HTTP_IDEMPOTENCY_KEY="adj-1")

    assert response.status_code == status, response.json()
    assert response.json()["code"] == code
    assert response.json()["field"] == field
    assert ledger_state() == before
    assert points_balance(member) == 0


def test_the_key_is_required_a_receptionist_may_not_and_other_stores_are_404(
    manager_api, reception_api, client_for, org, store2, member
):
    manager2 = StaffFactory(organisation=org, position="store_manager", stores=[store2], username="manager2")
    before = ledger_state()
    sent = {"points": 100, "reason": "补偿"}

    no_key = manager_api.post(url(member), sent, format="json")
    refused = reception_api.post(url(member), sent, format="json", HTTP_IDEMPOTENCY_KEY="adj-2")
    other = client_for(manager2).post(url(member), sent, format="json", HTTP_IDEMPOTENCY_KEY="adj-3")

    assert no_key.status_code == 400
    assert (refused.status_code, refused.json()["code"]) == (403, "auth.permission_denied")
    assert other.status_code == 404
    assert ledger_state() == before
    assert not AuditLog.objects.filter(action="loyalty.points_adjust").exists()
