"""The front-desk pages of segments and campaigns (HQ): lists, forms with the live count, send now, report."""

from __future__ import annotations

import pytest
from django.test import Client

from meiye.campaigns.models import Campaign, CampaignStatus, Segment
from meiye.campaigns.services import CampaignInput, campaign_save, segment_save
from meiye.loyalty.models import PointsLot
from tests.frontdesk.support import compile_translations

HTMX = {"HX-Request": "true"}


@pytest.fixture(scope="module", autouse=True)
def _translations() -> None:
    compile_translations()


def signed_in(staff, language: str | None = None) -> Client:
    client = Client()
    client.force_login(staff)
    if language:
        client.cookies["django_language"] = language
    return client


def test_segment_pages_with_live_count(hq_admin, people, store1):
    client = signed_in(hq_admin)
    assert client.get("/settings/segments/").status_code == 200
    page = client.get("/settings/segments/new/")
    assert page.status_code == 200
    assert 'hx-post="/settings/segments/count/"' in page.content.decode()

    count = client.post("/settings/segments/count/", {"tags": ["VIP", "新客"]}, headers=HTMX)
    assert count.status_code == 200
    assert "当前符合条件：2 位会员" in count.content.decode()
    bad = client.post("/settings/segments/count/", {"visits_days": "30"}, headers=HTMX)
    assert "条件不完整" in bad.content.decode()

    response = client.post("/settings/segments/new/", {"name": "静安店会员", "stores": [str(store1.pk)]})
    assert response.status_code == 302
    segment = Segment.objects.get()
    assert segment.criteria == {"store_ids": [store1.pk]}
    listing = client.get("/settings/segments/").content.decode()
    assert "静安店会员" in listing

    response = client.post(
        f"/settings/segments/{segment.pk}/", {"name": "静安店会员", "spend_days": "60", "spend_min": "800.00"}
    )
    assert response.status_code == 302
    segment.refresh_from_db()
    assert segment.criteria == {"spend_min": {"days": 60, "fen": 80_000}}


def test_segment_form_shows_the_services_refusal(hq_admin, people):
    client = signed_in(hq_admin)
    response = client.post("/settings/segments/new/", {"name": "x", "points_min": "10", "points_max": "5"})
    assert response.status_code == 400
    assert "积分上限不能小于下限" in response.content.decode()
    assert Segment.objects.count() == 0


def test_campaign_pages_create_send_and_report(hq_admin, hq, people):
    segment = segment_save(actor=hq, name="全部", criteria={})
    client = signed_in(hq_admin)
    assert client.get("/settings/campaigns/new/").status_code == 200
    response = client.post(
        "/settings/campaigns/new/",
        {
            "name": "回馈",
            "segment": str(segment.pk),
            "points": "20",
            "message_zh": "送您 20 积分",
            "holdout_percent": "0",
            "report_days": "30",
            "send_at": "2026-12-01T10:00",
            "schedule": "1",
        },
    )
    assert response.status_code == 302, response.content.decode()
    campaign = Campaign.objects.get()
    assert campaign.status == CampaignStatus.SCHEDULED
    assert "回馈" in client.get("/settings/campaigns/").content.decode()

    response = client.post(f"/settings/campaigns/{campaign.pk}/send/")
    assert response.status_code == 302
    assert response["Location"] == f"/settings/campaigns/{campaign.pk}/report/"
    assert PointsLot.objects.filter(source_code=f"campaign:{campaign.pk}").count() == 3
    client.post(f"/settings/campaigns/{campaign.pk}/send/")
    assert PointsLot.objects.filter(source_code=f"campaign:{campaign.pk}").count() == 3

    report = client.get(f"/settings/campaigns/{campaign.pk}/report/").content.decode()
    assert 'data-k="targets">3<' in report
    english = signed_in(hq_admin, "en").get(f"/settings/campaigns/{campaign.pk}/report/").content.decode()
    assert "Campaign report" in english


def test_campaign_pages_are_hq_only(manager, hq, people):
    campaign_save(
        actor=hq,
        data=CampaignInput(name="x", segment_id=segment_save(actor=hq, name="全部", criteria={}).pk, message_zh="x"),
    )
    client = signed_in(manager)
    assert client.get("/settings/campaigns/").status_code == 403
    assert client.get("/settings/segments/").status_code == 403
    assert client.post("/settings/campaigns/1/send/").status_code == 403
    assert PointsLot.objects.filter(source_code__startswith="campaign:").count() == 0
