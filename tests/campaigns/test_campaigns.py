"""Campaigns: states, the holdout split, sending (idempotent, resumable), the due-send command and the report."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from meiye.campaigns import services
from meiye.campaigns.models import Campaign, CampaignMember, CampaignStatus
from meiye.campaigns.selectors import campaign_report
from meiye.campaigns.services import (
    CampaignInput,
    campaign_save,
    campaign_schedule,
    campaign_send,
    campaign_unschedule,
    in_holdout,
    segment_save,
)
from meiye.core.errors import ApplicationError
from meiye.loyalty.models import PointsLot
from meiye.loyalty.selectors import points_balance
from meiye.notify.models import Message, MessageStatus
from meiye.org.context import Actor
from meiye.promotions.models import Coupon
from meiye.promotions.services import coupons_mark_used
from meiye.sales.models import BillStatus
from tests.campaigns.conftest import NOW, add_bill


def make_campaign(hq: Actor, segment: int, **extra: Any) -> Campaign:
    values: dict[str, Any] = {
        "name": "六月回馈",
        "segment_id": segment,
        "points": 100,
        "subject_zh": "六月回馈",
        "message_zh": "送您 100 积分",
        "message_en": "100 points for you",
        "send_at": NOW,
        **extra,
    }
    return campaign_save(actor=hq, data=CampaignInput(**values))


@pytest.fixture
def everyone(hq, people):
    return segment_save(actor=hq, name="全部会员", criteria={})


def state(people: dict[str, Any]) -> dict[str, Any]:
    return {
        "points": {k: points_balance(m) for k, m in people.items()},
        "coupons": Coupon.objects.count(),
        "messages": Message.objects.count(),
        "lots": PointsLot.objects.count(),
    }


def test_holdout_split_is_deterministic_and_near_the_share():
    first = [in_holdout(7, m, 1_000) for m in range(1, 10_001)]
    assert first == [in_holdout(7, m, 1_000) for m in range(1, 10_001)]
    assert 900 <= sum(first) <= 1_100
    assert not any(in_holdout(7, m, 0) for m in range(1, 1_001))
    assert [in_holdout(8, m, 1_000) for m in range(1, 10_001)] != first


def test_states_draft_scheduled_sent(hq, everyone):
    campaign = make_campaign(hq, everyone.pk, send_at=None)
    assert campaign.status == CampaignStatus.DRAFT
    with pytest.raises(ApplicationError) as caught:
        campaign_schedule(actor=hq, campaign=campaign)
    assert caught.value.field == "send_at"
    campaign = campaign_schedule(actor=hq, campaign=campaign, send_at=NOW)
    assert campaign.status == CampaignStatus.SCHEDULED
    campaign = campaign_unschedule(actor=hq, campaign=campaign)
    assert campaign.status == CampaignStatus.DRAFT
    campaign_send(actor=hq, campaign=campaign, now=NOW)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT
    assert campaign.sent_at == NOW and campaign.finished_at == NOW
    with pytest.raises(ApplicationError) as caught:
        campaign_save(
            actor=hq, data=CampaignInput(name="改", segment_id=everyone.pk, message_zh="x"), campaign=campaign
        )
    assert caught.value.code == "campaign.already_sent"


def test_send_gives_targets_points_coupon_and_message_once(hq, people, everyone, template, grant_marketing):
    grant_marketing(people["a"])
    campaign = make_campaign(hq, everyone.pk, coupon_template_id=template.pk)
    before = {k: points_balance(m) for k, m in people.items()}

    result = campaign_send(actor=hq, campaign=campaign, now=NOW)

    assert (result.targets, result.holdout, result.rewarded_now, result.pending) == (3, 0, 3, 0)
    assert {k: points_balance(m) - before[k] for k, m in people.items()} == {"a": 100, "b": 100, "c": 100}
    assert set(PointsLot.objects.filter(source_code=f"campaign:{campaign.pk}").values_list("member_id", flat=True)) == {
        m.pk for m in people.values()
    }
    campaign_coupons = Coupon.objects.filter(source=f"campaign:{campaign.pk}")
    assert sorted(campaign_coupons.values_list("member_id", flat=True)) == sorted(m.pk for m in people.values())
    messages = Message.objects.filter(event="campaign")
    assert messages.count() == 3
    assert set(messages.exclude(status=MessageStatus.SKIPPED).values_list("member_id", flat=True)) == {people["a"].pk}

    again = state(people)
    replay = campaign_send(actor=hq, campaign=campaign, now=NOW + timedelta(hours=1))
    assert (replay.targets, replay.rewarded_now, replay.pending) == (3, 0, 0)
    assert state(people) == again


def test_holdout_members_get_nothing(hq, people, everyone, monkeypatch):
    monkeypatch.setattr(services, "in_holdout", lambda campaign_id, member_id, bp: member_id == people["b"].pk)
    campaign = make_campaign(hq, everyone.pk, holdout_bp=1_000)
    before = points_balance(people["b"])
    result = campaign_send(actor=hq, campaign=campaign, now=NOW)
    assert (result.targets, result.holdout) == (2, 1)
    assert points_balance(people["b"]) == before
    assert not Message.objects.filter(member=people["b"], event="campaign").exists()
    assert CampaignMember.objects.get(member=people["b"]).holdout is True


def test_a_stopped_run_resumes_without_giving_twice(hq, people, everyone, monkeypatch):
    campaign = make_campaign(hq, everyone.pk)
    real = services.notify_event
    calls = {"n": 0}

    def flaky(**kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("provider down")
        return real(**kwargs)

    monkeypatch.setattr(services, "notify_event", flaky)
    before = {k: points_balance(m) for k, m in people.items()}
    with pytest.raises(RuntimeError):
        campaign_send(actor=hq, campaign=campaign, now=NOW)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENDING
    assert CampaignMember.objects.filter(done_at__isnull=False).count() == 1
    assert sum(points_balance(m) - before[k] for k, m in people.items()) == 100  # the failed one rolled back

    result = campaign_send(actor=hq, campaign=campaign, now=NOW + timedelta(minutes=5))
    assert (result.rewarded_now, result.pending) == (2, 0)
    assert {k: points_balance(m) - before[k] for k, m in people.items()} == {"a": 100, "b": 100, "c": 100}
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT


def test_send_needs_campaigns_manage(hq, people, everyone, manager, actor_for, store1):
    campaign = make_campaign(hq, everyone.pk)
    before = state(people)
    with pytest.raises(ApplicationError):
        campaign_send(actor=actor_for(manager, store1), campaign=campaign, now=NOW)
    assert state(people) == before
    assert CampaignMember.objects.count() == 0


def test_campaign_input_is_checked(hq, everyone):
    bad = [
        ({"points": -1}, "points"),
        ({"holdout_bp": 10_000}, "holdout_bp"),
        ({"message_zh": "  "}, "message_zh"),
        ({"segment_id": 999_999}, "segment"),
        ({"coupon_template_id": 999_999}, "coupon_template"),
        ({"report_days": 0}, "report_days"),
    ]
    for extra, field in bad:
        with pytest.raises(ApplicationError) as caught:
            make_campaign(hq, everyone.pk, **extra)
        assert caught.value.field == field
    assert Campaign.objects.count() == 0


def test_command_sends_due_campaigns_only(hq, people, everyone):
    due = campaign_schedule(actor=hq, campaign=make_campaign(hq, everyone.pk), send_at=NOW)
    later = campaign_schedule(
        actor=hq, campaign=make_campaign(hq, everyone.pk, name="七月"), send_at=NOW + timedelta(days=20)
    )
    out = StringIO()
    call_command("campaign_send_due", "--now", NOW.isoformat(), stdout=out, stderr=StringIO())
    assert f"#{due.pk}: 3 targets, 0 holdout, 3 rewarded, 0 pending" in out.getvalue()
    assert Campaign.objects.get(pk=due.pk).status == CampaignStatus.SENT
    assert Campaign.objects.get(pk=later.pk).status == CampaignStatus.SCHEDULED
    out = StringIO()
    call_command("campaign_send_due", "--date", "2026-06-15", stdout=out, stderr=StringIO())
    assert out.getvalue() == ""
    assert PointsLot.objects.filter(source_code=f"campaign:{due.pk}").count() == 3


def test_report_reach_redemptions_revenue_uplift_and_roi(hq, people, everyone, template, grant_marketing, monkeypatch):
    """Targets 甲 and 丙, holdout 乙, 100 points and the 50元 coupon each, a 30-day window.

    In the window: 甲 600.00 with her coupon (50.00 off) less 100.00 refunded; 丙 300.00 (and a voided bill
    and a bill on day 31, not counted); 乙 200.00. Before the window: 甲 1,000.00, not counted.
    Targets 800.00 → 400.00 each; holdout 200.00 each; uplift 200.00 a member (+100%).
    Cost: 50.00 coupon used + 200 points at 100 points = 1 元 (2.00) = 52.00. ROI = 200.00 × 2 − 52.00 = 348.00.
    """
    grant_marketing(people["a"])
    monkeypatch.setattr(services, "in_holdout", lambda campaign_id, member_id, bp: member_id == people["b"].pk)
    campaign = make_campaign(hq, everyone.pk, coupon_template_id=template.pk, holdout_bp=1_000, report_days=30)
    campaign_send(actor=hq, campaign=campaign, now=NOW)
    a, b, c = people["a"], people["b"], people["c"]

    add_bill(a, 100_000, NOW - timedelta(hours=1))
    used_on = add_bill(a, 60_000, NOW + timedelta(days=1), refund_fen=10_000)
    coupon = Coupon.objects.get(source=f"campaign:{campaign.pk}", member=a)
    coupons_mark_used(actor=hq, used=[(coupon, 5_000)], bill_id=used_on.pk)
    add_bill(c, 30_000, NOW + timedelta(days=5))
    add_bill(c, 40_000, NOW + timedelta(days=6), status=BillStatus.VOIDED)
    add_bill(c, 99_900, NOW + timedelta(days=30, minutes=1))
    add_bill(b, 20_000, NOW + timedelta(days=2))

    report = campaign_report(hq, Campaign.objects.get(pk=campaign.pk)).as_dict()
    assert report == {
        "campaign_id": campaign.pk,
        "window_days": 30,
        "targets": 2,
        "holdout": 1,
        "done": 2,
        "messages_queued": 1,
        "messages_skipped": 1,
        "coupons_issued": 2,
        "coupons_redeemed": 1,
        "coupon_discount_fen": 5_000,
        "points_given": 200,
        "points_cost_fen": 200,
        "cost_fen": 5_200,
        "target_revenue_fen": 80_000,
        "target_average_fen": 40_000,
        "holdout_revenue_fen": 20_000,
        "holdout_average_fen": 20_000,
        "uplift_fen": 20_000,
        "uplift_bp": 10_000,
        "roi_fen": 34_800,
    }


def test_report_of_an_unsent_campaign_is_zero(hq, everyone):
    report = campaign_report(hq, make_campaign(hq, everyone.pk))
    assert (report.targets, report.target.revenue_fen, report.uplift_bp, report.roi_fen) == (0, 0, None, 0)
