"""The segments and campaigns API: CRUD, the live count, schedule, send (key required, replay-safe), report."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from meiye.campaigns.models import Campaign, CampaignStatus, Segment
from meiye.loyalty.models import PointsLot
from meiye.org.context import Actor
from meiye.org.services import api_token_create


def api(staff) -> APIClient:
    _token, secret = api_token_create(actor=Actor.system(staff.organisation), staff=staff, name="tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def hq_api(hq_admin) -> APIClient:
    return api(hq_admin)


def test_segments_crud_and_count(hq_api, people, store1):
    response = hq_api.post("/api/v1/segments/count/", {"criteria": {"tags": ["VIP", "新客"]}}, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"count": 2}

    response = hq_api.post(
        "/api/v1/segments/",
        {"name": "沉睡", "criteria": {"tags": ["VIP", "新客"]}},
        format="json",
        HTTP_IDEMPOTENCY_KEY="s1",
    )
    assert response.status_code == 201, response.content
    pk = response.json()["id"]
    assert response.json()["criteria"] == {"tags": ["VIP", "新客"]}

    response = hq_api.patch(f"/api/v1/segments/{pk}/", {"criteria": {"store_ids": [store1.pk]}}, format="json")
    assert response.status_code == 200
    assert response.json()["name"] == "沉睡"
    assert hq_api.get(f"/api/v1/segments/{pk}/count/").json() == {"count": 2}
    assert [row["id"] for row in hq_api.get("/api/v1/segments/").json()["results"]] == [pk]

    response = hq_api.post("/api/v1/segments/count/", {"criteria": {"birthday_month": 13}}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "segment.invalid_criteria"

    assert hq_api.delete(f"/api/v1/segments/{pk}/").status_code == 204
    assert Segment.objects.count() == 0


def test_campaign_create_schedule_send_report(hq_api, people):
    segment = hq_api.post("/api/v1/segments/", {"name": "全部", "criteria": {}}, format="json").json()
    body = {"name": "回馈", "segment_id": segment["id"], "points": 50, "message_zh": "送您 50 积分"}
    response = hq_api.post("/api/v1/campaigns/", body, format="json")
    assert response.status_code == 201, response.content
    campaign = response.json()
    assert campaign["status"] == "draft"

    response = hq_api.patch(f"/api/v1/campaigns/{campaign['id']}/", {"holdout_bp": 0, "points": 60}, format="json")
    assert response.json()["points"] == 60
    response = hq_api.post(
        f"/api/v1/campaigns/{campaign['id']}/schedule/", {"send_at": "2026-06-20T10:00:00+08:00"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "scheduled"

    response = hq_api.post(f"/api/v1/campaigns/{campaign['id']}/send/")
    assert response.status_code == 400
    assert response.json()["code"] == "idempotency.key_required"
    assert PointsLot.objects.filter(source_code__startswith="campaign:").count() == 0

    response = hq_api.post(f"/api/v1/campaigns/{campaign['id']}/send/", HTTP_IDEMPOTENCY_KEY="send-1")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "campaign_id": campaign["id"],
        "targets": 3,
        "holdout": 0,
        "rewarded_now": 3,
        "pending": 0,
    }
    again = hq_api.post(f"/api/v1/campaigns/{campaign['id']}/send/", HTTP_IDEMPOTENCY_KEY="send-2")
    assert again.json()["rewarded_now"] == 0
    assert PointsLot.objects.filter(source_code=f"campaign:{campaign['id']}").count() == 3
    assert Campaign.objects.get().status == CampaignStatus.SENT

    report = hq_api.get(f"/api/v1/campaigns/{campaign['id']}/report/").json()
    assert (report["targets"], report["points_given"], report["points_cost_fen"]) == (3, 180, 180)


def test_campaigns_need_hq(people, manager):
    response = api(manager).get("/api/v1/campaigns/")
    assert response.status_code == 403
